// A small typed event emitter for both sides. A listener that throws does not stop the others:
// the error is handed to `onListenerError` with the event's name (console.error by default, for the
// browser; the server passes one that logs through its logger).

/** Any object type whose keys are event names: interfaces and type aliases both fit. */
export type EventMap<T> = { [K in keyof T]: unknown };
export type Listener<T> = (payload: T) => void;

export class Emitter<Events extends EventMap<Events>> {
  private readonly listeners = new Map<keyof Events, Set<Listener<never>>>();

  constructor(private readonly onListenerError: (err: unknown, event: keyof Events) => void = (err) => console.error(err)) {}

  /** Adds a listener; returns the function that removes it. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    let set = this.listeners.get(event);
    if (!set) this.listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => this.off(event, listener);
  }

  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    this.listeners.get(event)?.delete(listener);
  }

  emit<K extends keyof Events>(event: K, payload: Events[K]): void {
    const set = this.listeners.get(event);
    if (!set) return;
    for (const listener of [...set]) {
      try {
        (listener as Listener<Events[K]>)(payload);
      } catch (err) {
        this.onListenerError(err, event);
      }
    }
  }

  removeAllListeners(): void {
    this.listeners.clear();
  }
}
