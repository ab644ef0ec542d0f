/** Counts live subscription streams across every transport (WebSocket and SSE). */
export interface Activity {
  /** Records a stream opening; call the returned function once when it closes. */
  streamOpened(): () => void
  /** Streams open right now. */
  openStreams(): number
}

export function createActivity(): Activity {
  let open = 0
  return {
    streamOpened() {
      open += 1
      let closed = false
      return () => {
        if (closed) return
        closed = true
        open -= 1
      }
    },
    openStreams: () => open,
  }
}
