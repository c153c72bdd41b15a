// One connection to a NATS cluster, for an origin or an edge. It connects in the background and
// keeps at it: an origin serves its own viewers whether or not NATS is there, and an edge comes up
// and lists nothing until it is. Subscriptions asked for before the first connection are made on
// it; the client makes them again on every reconnect. Frames are published only while connected:
// those the client would buffer during a reconnect would arrive late, and an edge skips to the next
// keyframe over the gap anyway.

import {
  connect,
  createInbox,
  credsAuthenticator,
  nkeyAuthenticator,
  type Msg,
  type NatsConnection,
  type NodeConnectionOptions,
  type Subscription,
} from "@nats-io/transport-node";
import type { Logger } from "../log.js";
import type { NatsSettings } from "./nats-config.js";

/** How often the client pings its server; two unanswered pings and it reconnects elsewhere. */
const PING_INTERVAL_MS = 2000;
const MAX_PINGS_OUT = 2;
/** Between reconnect attempts (to the next server of the list). */
const RECONNECT_WAIT_MS = 250;
/** After a failed first connection (say, refused credentials) before trying again; doubles up to the maximum. */
const RETRY_FIRST_CONNECT_MS = 2000;
const MAX_RETRY_FIRST_CONNECT_MS = 30_000;

export type MessageHandler = (msg: Msg) => void;

export interface LinkSubscription {
  unsubscribe(): void;
}

export class NatsLinkError extends Error {
  override readonly name = "NatsLinkError";
  constructor(
    readonly code: "CC_ERR_NATS_AUTH" | "CC_ERR_NATS_CONNECT" | "CC_ERR_NATS_PAYLOAD",
    message: string,
  ) {
    super(message);
  }
}

interface WantedSubscription {
  readonly subject: string;
  readonly handler: MessageHandler;
  active: Subscription | null;
  cancelled: boolean;
}

export class NatsLink {
  private nc: NatsConnection | null = null;
  private readonly wanted = new Set<WantedSubscription>();
  private readonly listeners = new Set<(connected: boolean) => void>();
  private retryTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private closing: Promise<void> | null = null;
  /** True while a server is connected (between a connect or reconnect and the next disconnect). */
  connected = false;
  /** Why the link is not connected, when it is not (the last error), for /api/streams and logs. */
  lastError: string | null = null;
  /** Publishes dropped: not connected, or over the servers' max_payload. */
  dropped = 0;
  private warnedPayload = false;

  constructor(
    private readonly settings: NatsSettings,
    private readonly log: Logger,
  ) {
    void this.connectLoop();
  }

  /** Called with `connected` at every connect, reconnect and disconnect. */
  onConnectedChange(listener: (connected: boolean) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The servers' largest message, bytes (1 MiB by default); null until connected. */
  get maxPayload(): number | null {
    return this.nc?.info?.max_payload ?? null;
  }

  /** The server connected to, e.g. "127.0.0.1:4222"; null when none. */
  get server(): string | null {
    return this.connected && this.nc !== null ? this.nc.getServer() : null;
  }

  /** Publishes `data` now, or drops it (returns false) when not connected or too large. */
  publish(subject: string, data: Uint8Array, reply?: string): boolean {
    const nc = this.nc;
    if (nc === null || !this.connected) {
      this.dropped++;
      return false;
    }
    const max = nc.info?.max_payload;
    if (max !== undefined && data.byteLength > max) {
      this.dropped++;
      if (!this.warnedPayload) {
        this.warnedPayload = true;
        this.log.warn("message larger than the NATS servers' max_payload: dropped (raise max_payload)", {
          code: "CC_ERR_NATS_PAYLOAD",
          subject,
          bytes: data.byteLength,
          maxPayload: max,
        });
      }
      return false;
    }
    try {
      nc.publish(subject, data, reply !== undefined ? { reply } : undefined);
      return true;
    } catch (err) {
      this.dropped++;
      this.log.warn("NATS publish failed", { subject, error: (err as Error).message });
      return false;
    }
  }

  /** A subscription for as long as it is not unsubscribed, across reconnects; made once connected. */
  subscribe(subject: string, handler: MessageHandler): LinkSubscription {
    const sub: WantedSubscription = { subject, handler, active: null, cancelled: false };
    this.wanted.add(sub);
    if (this.nc !== null) this.activate(this.nc, sub);
    return {
      unsubscribe: () => {
        if (sub.cancelled) return;
        sub.cancelled = true;
        this.wanted.delete(sub);
        try {
          sub.active?.unsubscribe();
        } catch {
          // the connection is closed: nothing to undo
        }
      },
    };
  }

  /** A fresh subject for replies. */
  inbox(): string {
    return createInbox();
  }

  /** Closes the connection (after flushing what was published). Safe to call twice. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      if (this.retryTimer !== null) clearTimeout(this.retryTimer);
      const nc = this.nc;
      this.nc = null;
      this.setConnected(false);
      if (nc === null) return;
      try {
        await Promise.race([nc.flush(), sleep(500)]);
      } catch {
        // not connected: nothing to flush
      }
      await nc.close().catch(() => undefined);
    })();
    return this.closing;
  }

  private async connectLoop(): Promise<void> {
    let retryMs = RETRY_FIRST_CONNECT_MS;
    while (!this.closed) {
      try {
        const nc = await connect(this.options());
        if (this.closed) {
          await nc.close();
          return;
        }
        this.nc = nc;
        this.lastError = null;
        this.log.info("NATS connected", { server: nc.getServer() });
        for (const sub of this.wanted) this.activate(nc, sub);
        this.setConnected(true);
        void this.watch(nc);
        return;
      } catch (err) {
        const e = err as Error;
        const auth = /authoriz|authentic|permission/i.test(`${e.name} ${e.message}`);
        const code = auth ? "CC_ERR_NATS_AUTH" : "CC_ERR_NATS_CONNECT";
        this.lastError = `${code}: ${e.message}`;
        this.log.error(auth ? "NATS refused the credentials; retrying" : "cannot connect to NATS; retrying", {
          code,
          servers: this.settings.servers,
          error: e.message,
          retryInMs: retryMs,
        });
        await new Promise<void>((resolve) => {
          this.retryTimer = setTimeout(resolve, retryMs);
        });
        retryMs = Math.min(retryMs * 2, MAX_RETRY_FIRST_CONNECT_MS);
      }
    }
  }

  private async watch(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      switch (status.type) {
        case "disconnect":
          this.lastError = `disconnected from ${status.server}`;
          this.log.warn("NATS disconnected; reconnecting", { server: status.server });
          this.setConnected(false);
          break;
        case "reconnect":
          this.lastError = null;
          this.log.info("NATS reconnected", { server: status.server });
          this.setConnected(true);
          break;
        case "error":
          this.log.warn("NATS error", { error: status.error.message });
          break;
        case "slowConsumer":
          this.log.warn("NATS slow consumer: messages dropped", { subject: status.sub.getSubject() });
          break;
        default:
          break;
      }
    }
    // The status iterator ends when the connection is closed for good (by us, or it gave up).
    if (!this.closed) {
      this.log.error("NATS connection closed; connecting again", { code: "CC_ERR_NATS_CONNECT" });
      this.nc = null;
      this.setConnected(false);
      for (const sub of this.wanted) sub.active = null;
      void this.connectLoop();
    }
  }

  private activate(nc: NatsConnection, sub: WantedSubscription): void {
    if (sub.cancelled || sub.active !== null) return;
    sub.active = nc.subscribe(sub.subject, {
      callback: (err, msg) => {
        if (err !== null || sub.cancelled) return;
        try {
          sub.handler(msg);
        } catch (e) {
          // A bug handling one message must not end the subscription or the process.
          this.log.error("error handling a NATS message", { subject: msg.subject, error: (e as Error).message, stack: (e as Error).stack });
        }
      },
    });
  }

  private setConnected(connected: boolean): void {
    if (this.connected === connected) return;
    this.connected = connected;
    for (const listener of this.listeners) listener(connected);
  }

  private options(): NodeConnectionOptions {
    const { servers, name, auth, tls } = this.settings;
    const options: NodeConnectionOptions = {
      servers: [...servers],
      name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: RECONNECT_WAIT_MS,
      reconnectJitter: 100,
      reconnectJitterTLS: 250,
      pingInterval: PING_INTERVAL_MS,
      maxPingOut: MAX_PINGS_OUT,
      timeout: 2000,
      // Each edge and origin answers only its own requests and is not interested in its own frames.
      noEcho: true,
    };
    switch (auth.kind) {
      case "none":
        break;
      case "user":
        options.user = auth.user;
        options.pass = auth.password;
        break;
      case "token":
        options.token = auth.token;
        break;
      case "nkey":
        options.authenticator = nkeyAuthenticator(new TextEncoder().encode(auth.seed));
        break;
      case "creds":
        options.authenticator = credsAuthenticator(new TextEncoder().encode(auth.creds));
        break;
    }
    if (tls !== null) {
      options.tls = {
        ...(tls.caFile !== undefined ? { caFile: tls.caFile } : {}),
        ...(tls.certFile !== undefined ? { certFile: tls.certFile } : {}),
        ...(tls.keyFile !== undefined ? { keyFile: tls.keyFile } : {}),
      };
    }
    return options;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms).unref());
