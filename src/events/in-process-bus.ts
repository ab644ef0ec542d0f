import type { Bus, BusListener, BusMessage } from './bus.js'

/** A bus for a single instance: listeners are called in publish order on a later microtask. */
export function createInProcessBus(): Bus {
  const listeners = new Map<string, Set<BusListener>>()
  return {
    async publish(channel: string, message: BusMessage) {
      const targets = listeners.get(channel)
      if (!targets) return
      // Copy so a listener that unsubscribes during delivery does not skip its neighbour.
      const snapshot = [...targets]
      queueMicrotask(() => {
        for (const listener of snapshot) listener(message)
      })
    },
    async subscribe(channel: string, listener: BusListener) {
      let targets = listeners.get(channel)
      if (!targets) {
        targets = new Set()
        listeners.set(channel, targets)
      }
      targets.add(listener)
      return () => {
        targets.delete(listener)
        if (targets.size === 0 && listeners.get(channel) === targets) listeners.delete(channel)
      }
    },
    async ping() {},
    async close() {
      listeners.clear()
    },
  }
}
