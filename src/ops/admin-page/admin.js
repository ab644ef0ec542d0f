// The /admin page: signs in with an admin token (kept in sessionStorage only), follows the
// `adminActivity` subscription over graphql-ws, and pages through connections with queries on
// the same socket, refetching the current page only when the server's revision changes.
/* global graphqlWs */
;(() => {
  const TOKEN_KEY = 'switchboard.adminToken'
  const PAGE_SIZE = 25
  const TOP = 10
  const CONFIRM_WINDOW = 4_000 // ms a "Confirm" button stays armed

  const ACTIVITY = `subscription AdminPageActivity($top: Int) {
    adminActivity(top: $top) {
      instance revision connections subscriptions streams channels
      eventsPerSecond eventsPublished deliveriesPerSecond deliveries errors refusals
      topChannels { channel subscribers }
      operations { operationName rootField subscriptions }
      recentProblems { at kind code message user operation }
    }
  }`
  const CONNECTIONS = `query AdminPageConnections($filter: AdminFilter, $first: Int, $after: String) {
    adminConnections(filter: $filter, first: $first, after: $after) {
      totalCount endCursor hasNextPage
      nodes {
        id user role remoteAddress forwardedFor connectedAt
        subscriptions { id operationName rootField channels }
      }
    }
  }`
  const DISCONNECT = `mutation AdminPageDisconnect($id: ID!, $reason: String!) {
    disconnectConnection(id: $id, reason: $reason)
  }`
  const CLOSE_CHANNEL = `mutation AdminPageCloseChannel($channel: String!, $reason: String!) {
    closeChannelSubscriptions(channel: $channel, reason: $reason)
  }`

  const $ = (id) => document.getElementById(id)

  /** An element with text children only: nothing from the server is parsed as HTML. */
  const el = (tag, props = {}, ...children) => {
    const node = document.createElement(tag)
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null) continue
      if (key === 'class') node.className = value
      else if (key === 'dataset') Object.assign(node.dataset, value)
      else if (key.startsWith('on')) node.addEventListener(key.slice(2), value)
      else node.setAttribute(key, value)
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue
      node.append(child instanceof Node ? child : String(child))
    }
    return node
  }

  const number = (value) => Number(value).toLocaleString('en-US')
  const rate = (value) =>
    Number(value).toLocaleString('en-US', { maximumFractionDigits: value < 10 ? 1 : 0 })
  const clock = (iso) => new Date(iso).toLocaleTimeString('en-GB', { hour12: false })
  const ago = (iso) => {
    const seconds = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
    if (seconds < 60) return `${seconds} s ago`
    const minutes = Math.floor(seconds / 60)
    if (minutes < 60) return `${minutes} min ago`
    const hours = Math.floor(minutes / 60)
    if (hours < 48) return `${hours} h ${minutes % 60} min ago`
    return `${Math.floor(hours / 24)} d ago`
  }
  const messageOf = (error) => {
    if (Array.isArray(error)) return error.map((e) => e.message).join('; ')
    if (error && typeof error.code === 'number') {
      return `connection closed (${error.code}${error.reason ? `: ${error.reason}` : ''})`
    }
    return error instanceof Error ? error.message : String(error)
  }

  let client
  let stopActivity = () => {}
  let revision = -1
  // `after` cursors of the pages seen so far; the last one is the current page's.
  let cursors = [null]
  let loading = false
  let reloadAgain = false
  let lastTotal = 0

  const setStatus = (kind, text) => {
    $('status-dot').className = `dot ${kind}`
    $('status-text').textContent = text
  }
  const notify = (text, kind = 'info') => {
    const notice = $('notice')
    notice.textContent = text
    notice.className = `notice ${kind}`
    notice.hidden = !text
  }

  /** Runs one query over the socket; resolves with `data`. */
  const runQuery = (query, variables) =>
    new Promise((resolve, reject) => {
      let result
      client.subscribe(
        { query, variables },
        {
          next: (value) => {
            result = value
          },
          error: reject,
          complete: () => {
            if (result?.errors?.length) reject(result.errors)
            else resolve(result?.data)
          },
        },
      )
    })

  /**
   * Runs one mutation over HTTP POST: Yoga refuses mutations that arrive with the WebSocket's
   * upgrade request (a GET). Resolves with `data`.
   */
  const mutate = async (query, variables) => {
    const response = await fetch('/graphql', {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        accept: 'application/graphql-response+json, application/json',
        authorization: `Bearer ${sessionStorage.getItem(TOKEN_KEY)}`,
      },
      body: JSON.stringify({ query, variables }),
    })
    const result = await response.json()
    if (result.errors?.length) throw result.errors
    return result.data
  }

  // Buttons waiting for their second click, by what they act on: rows are re-rendered
  // whenever the server's revision changes, and a re-rendered button stays armed.
  const armed = new Map()

  /** A button that asks for a second click (within a few seconds) before doing `action`. */
  const confirmButton = (key, label, title, action) => {
    const button = el('button', { type: 'button', class: 'danger', title }, label)
    const show = (on) => {
      button.textContent = on ? 'Confirm' : label
      button.classList.toggle('armed', on)
    }
    show(armed.has(key))
    button.addEventListener('click', async () => {
      if (!armed.has(key)) {
        show(true)
        armed.set(
          key,
          setTimeout(() => {
            armed.delete(key)
            if (button.isConnected) show(false)
          }, CONFIRM_WINDOW),
        )
        return
      }
      clearTimeout(armed.get(key))
      armed.delete(key)
      button.disabled = true
      try {
        await action()
      } catch (error) {
        notify(messageOf(error), 'error')
        button.disabled = false
        show(false)
      }
    })
    return button
  }

  const reason = () => $('reason').value.trim() || 'Disconnected from the admin page'

  const fillTable = (id, rows) => {
    $(id)
      .querySelector('tbody')
      .replaceChildren(...rows)
    $(`${id}-empty`).hidden = rows.length > 0
  }

  const renderActivity = (activity) => {
    $('instance').textContent = `instance ${activity.instance}`
    $('stat-connections').textContent = number(activity.connections)
    $('stat-subscriptions').textContent = number(activity.subscriptions)
    $('stat-streams').textContent = `${number(activity.streams)} streams, SSE included`
    $('stat-channels').textContent = number(activity.channels)
    $('stat-events').textContent = rate(activity.eventsPerSecond)
    $('stat-events-total').textContent = `${number(activity.eventsPublished)} published here`
    $('stat-deliveries').textContent = rate(activity.deliveriesPerSecond)
    $('stat-deliveries-total').textContent = `${number(activity.deliveries)} in total`
    $('stat-problems').textContent = `${number(activity.errors)} · ${number(activity.refusals)}`

    fillTable(
      'channels',
      activity.topChannels.map(({ channel, subscribers }) =>
        el(
          'tr',
          { dataset: { channel } },
          el('td', { class: 'mono' }, channel),
          el('td', { class: 'num' }, number(subscribers)),
          el(
            'td',
            { class: 'actions' },
            confirmButton(
              `channel ${channel}`,
              'Close',
              `End every subscription following ${channel}`,
              async () => {
                const closed = await mutate(CLOSE_CHANNEL, { channel, reason: reason() })
                notify(`Closed ${closed.closeChannelSubscriptions} subscriptions of ${channel}.`)
              },
            ),
          ),
        ),
      ),
    )
    fillTable(
      'operations',
      activity.operations.map((operation) =>
        el(
          'tr',
          {},
          el('td', {}, operation.operationName ?? el('span', { class: 'muted' }, 'anonymous')),
          el('td', { class: 'mono' }, operation.rootField),
          el('td', { class: 'num' }, number(operation.subscriptions)),
        ),
      ),
    )
    fillTable(
      'problems',
      activity.recentProblems.map((problem) =>
        el(
          'tr',
          {},
          el('td', { class: 'mono', title: problem.at }, clock(problem.at)),
          el('td', {}, el('span', { class: `badge ${problem.kind.toLowerCase()}` }, problem.kind)),
          el('td', { class: 'mono' }, problem.code),
          el('td', { class: 'message' }, problem.message),
          el('td', {}, problem.user ?? '—'),
          el('td', { class: 'mono' }, problem.operation ?? '—'),
        ),
      ),
    )
    for (const cell of document.querySelectorAll('[data-since]')) {
      cell.lastChild.textContent = ago(cell.dataset.since)
    }
    if (activity.revision !== revision) {
      revision = activity.revision
      void loadConnections()
    }
  }

  const connectionRow = (connection) => {
    const names = [...new Set(connection.subscriptions.map((s) => s.operationName ?? s.rootField))]
    const channels = [...new Set(connection.subscriptions.flatMap((s) => s.channels))]
    return el(
      'tr',
      { dataset: { id: connection.id, user: connection.user } },
      el(
        'td',
        {},
        el('strong', {}, connection.user),
        el('div', { class: 'mono small muted' }, connection.id),
      ),
      el('td', {}, el('span', { class: `badge role-${connection.role}` }, connection.role)),
      el(
        'td',
        {
          class: 'mono',
          title: connection.forwardedFor ? `X-Forwarded-For ${connection.forwardedFor}` : null,
        },
        connection.remoteAddress ?? '—',
      ),
      el(
        'td',
        { title: connection.connectedAt, dataset: { since: connection.connectedAt } },
        el('span', { class: 'mono' }, clock(connection.connectedAt)),
        ' ',
        el('span', { class: 'muted' }, ago(connection.connectedAt)),
      ),
      el(
        'td',
        { title: channels.length ? `Channels: ${channels.join(', ')}` : null },
        el('span', { class: 'count' }, number(connection.subscriptions.length)),
        names.length ? ` ${names.slice(0, 3).join(', ')}${names.length > 3 ? ', …' : ''}` : '',
      ),
      el(
        'td',
        { class: 'actions' },
        confirmButton(
          `connection ${connection.id}`,
          'Disconnect',
          `Close connection ${connection.id}`,
          async () => {
            await mutate(DISCONNECT, { id: connection.id, reason: reason() })
            notify(`Disconnected ${connection.user} (${connection.id}).`)
            void loadConnections()
          },
        ),
      ),
    )
  }

  /** Loads the current page of connections; a load asked for meanwhile runs right after. */
  const loadConnections = async () => {
    if (loading) {
      reloadAgain = true
      return
    }
    loading = true
    try {
      const role = $('role-filter').value
      const search = $('filter').value.trim()
      const filter = { ...(role ? { role } : {}), ...(search ? { search } : {}) }
      const after = cursors[cursors.length - 1]
      const data = await runQuery(CONNECTIONS, { filter, first: PAGE_SIZE, after })
      const page = data.adminConnections
      if (page.nodes.length === 0 && cursors.length > 1) {
        // The page emptied (its connections left): show the one before.
        cursors.pop()
        reloadAgain = true
        return
      }
      lastTotal = page.totalCount
      fillTable('connections', page.nodes.map(connectionRow))
      const from = (cursors.length - 1) * PAGE_SIZE
      $('page-info').textContent = page.totalCount
        ? `${number(from + 1)}–${number(from + page.nodes.length)} of ${number(page.totalCount)}`
        : ''
      $('prev').disabled = cursors.length <= 1
      $('next').disabled = !page.hasNextPage
      $('next').dataset.after = page.endCursor ?? ''
    } catch (error) {
      notify(messageOf(error), 'error')
    } finally {
      loading = false
      if (reloadAgain) {
        reloadAgain = false
        void loadConnections()
      }
    }
  }

  const showLogin = (error) => {
    stopActivity()
    stopActivity = () => {}
    client?.dispose()
    client = undefined
    $('dashboard').hidden = true
    $('logout').hidden = true
    $('login').hidden = false
    $('instance').textContent = ''
    $('login-error').textContent = error ?? ''
    setStatus('', 'Signed out')
  }

  const signOut = (error) => {
    sessionStorage.removeItem(TOKEN_KEY)
    showLogin(error)
  }

  const start = (token) => {
    $('login').hidden = true
    $('dashboard').hidden = false
    $('logout').hidden = false
    notify('')
    setStatus('pending', 'Connecting…')
    const url = new URL('/graphql', window.location.href)
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:'
    client = graphqlWs.createClient({
      url: url.href,
      connectionParams: { token },
      lazy: false,
      retryAttempts: Number.POSITIVE_INFINITY,
      onNonLazyError: () => {},
      on: {
        connected: () => {
          setStatus('live', 'Live')
          revision = -1
        },
        closed: (event) => {
          if (!client) return
          // 4401: the token is missing or invalid; the client gives up, so do we.
          if (event?.code === 4401) return signOut(`Token refused: ${event.reason || 'invalid'}`)
          // 4403 at or after `exp`: retrying with the same token cannot help.
          if (event?.code === 4403) return signOut('The token expired: sign in with a fresh one.')
          setStatus('down', `Reconnecting… (${event?.code ?? 'closed'})`)
        },
      },
    })
    stopActivity = client.subscribe(
      { query: ACTIVITY, variables: { top: TOP } },
      {
        next: ({ data, errors }) => {
          if (errors?.length) {
            const forbidden = errors.some((e) => e.extensions?.code === 'FORBIDDEN')
            return signOut(forbidden ? 'This token does not have role admin.' : messageOf(errors))
          }
          renderActivity(data.adminActivity)
        },
        error: (error) => {
          if (client) notify(`Live updates stopped: ${messageOf(error)}`, 'error')
        },
        complete: () => {},
      },
    )
  }

  $('login-form').addEventListener('submit', (event) => {
    event.preventDefault()
    const token = $('token')
      .value.trim()
      .replace(/^Bearer\s+/i, '')
    if (!token) return
    sessionStorage.setItem(TOKEN_KEY, token)
    $('token').value = ''
    start(token)
  })
  $('logout').addEventListener('click', () => signOut())

  let filterTimer
  const refilter = () => {
    clearTimeout(filterTimer)
    filterTimer = setTimeout(() => {
      cursors = [null]
      void loadConnections()
    }, 250)
  }
  $('filter').addEventListener('input', refilter)
  $('role-filter').addEventListener('change', refilter)
  $('filter-form').addEventListener('submit', (event) => event.preventDefault())
  $('prev').addEventListener('click', () => {
    if (cursors.length > 1) cursors.pop()
    void loadConnections()
  })
  $('next').addEventListener('click', () => {
    const after = $('next').dataset.after
    if (!after || lastTotal === 0) return
    cursors.push(after)
    void loadConnections()
  })

  const saved = sessionStorage.getItem(TOKEN_KEY)
  if (saved) start(saved)
  else showLogin()
})()
