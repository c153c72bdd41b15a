// A real NATS cluster on loopback for the tests: `nats-server` processes (Debian's), each with a
// client port, a route port and a monitoring port picked free, routed to each other. A node can be
// killed and started again on the same ports, as an operator's restarted node would be. Nodes
// still running when the process exits are killed then (a bench or test that died half-way).

import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { until } from "./until.js";

export interface NatsNode {
  readonly index: number;
  /** nats://127.0.0.1:PORT */
  readonly url: string;
  readonly port: number;
  readonly monitorPort: number;
  readonly running: boolean;
  /** The nats-server process while it runs (for its CPU in the bench), else null. */
  readonly pid: number | null;
  /** SIGKILL: the node is gone without a word, as a crashed machine's. */
  kill(): Promise<void>;
  /** Starts it again on the same ports (after kill). */
  start(): Promise<void>;
  /** The node's monitoring endpoint, parsed (e.g. "routez", "connz?subs=1"). */
  monitor<T>(path: string): Promise<T>;
}

export interface NatsCluster {
  readonly nodes: readonly NatsNode[];
  /** Every node's client URL, comma-separated, for --nats. */
  readonly urls: string;
  /** Waits until every running node has a route to every other running node. */
  routed(timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export interface NatsClusterOptions {
  /** Extra configuration for every node (e.g. an authorization block). */
  readonly extraConfig?: string;
}

const clusters = new Set<NatsCluster>();
/** Every nats-server child still running and every config directory not yet removed: gone on exit. */
const children = new Set<ChildProcess>();
const dirs = new Set<string>();
let exitHook = false;

function cleanUpOnExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.on("exit", () => {
    for (const c of children) c.kill("SIGKILL");
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
}

/** Stops every cluster this test file started (for afterAll). */
export async function stopAllNatsClusters(): Promise<void> {
  await Promise.all([...clusters].map((c) => c.close()));
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startNatsCluster(size = 3, options: NatsClusterOptions = {}): Promise<NatsCluster> {
  cleanUpOnExit();
  const dir = mkdtempSync(join(tmpdir(), "canvascast-nats-"));
  dirs.add(dir);
  const ports = await Promise.all(Array.from({ length: size }, async () => ({ client: await freePort(), route: await freePort(), monitor: await freePort() })));
  const routes = ports.map((p) => `nats-route://127.0.0.1:${p.route}`).join(", ");
  const nodes: Node[] = ports.map((p, i) => {
    const config = join(dir, `node${i}.conf`);
    writeFileSync(
      config,
      [
        `server_name: n${i}`,
        `listen: 127.0.0.1:${p.client}`,
        `http: 127.0.0.1:${p.monitor}`,
        size > 1 ? `cluster { name: cc, listen: 127.0.0.1:${p.route}, routes: [${routes}] }` : "",
        options.extraConfig ?? "",
      ].join("\n"),
    );
    return new Node(i, p.client, p.monitor, config);
  });
  const started = await Promise.allSettled(nodes.map((n) => n.start()));
  const failed = started.find((r) => r.status === "rejected");
  if (failed !== undefined) {
    // The nodes that did start go too: no caller holds them.
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
    dirs.delete(dir);
    throw failed.reason;
  }
  const cluster: NatsCluster = {
    nodes,
    urls: nodes.map((n) => n.url).join(","),
    async routed(timeoutMs = 15_000) {
      const up = nodes.filter((n) => n.running);
      await until(`NATS routes among ${up.length} nodes`, timeoutMs, async () => {
        const counts = await Promise.all(up.map((n) => n.monitor<{ num_routes: number }>("routez").then((r) => r.num_routes).catch(() => -1)));
        return counts.every((c) => c >= up.length - 1) ? true : undefined;
      });
    },
    async close() {
      clusters.delete(cluster);
      await Promise.all(nodes.map((n) => n.kill()));
      rmSync(dir, { recursive: true, force: true });
      dirs.delete(dir);
    },
  };
  clusters.add(cluster);
  if (size > 1) {
    await cluster.routed().catch(async (err: unknown) => {
      await cluster.close();
      throw err;
    });
  }
  return cluster;
}

class Node implements NatsNode {
  private child: ChildProcess | null = null;
  private exited: Promise<void> = Promise.resolve();
  private log = "";

  constructor(
    readonly index: number,
    readonly port: number,
    readonly monitorPort: number,
    private readonly config: string,
  ) {}

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.child !== null;
  }

  get pid(): number | null {
    return this.child?.pid ?? null;
  }

  async start(): Promise<void> {
    if (this.child !== null) return;
    const child = spawn("nats-server", ["-c", this.config], { stdio: ["ignore", "ignore", "pipe"] });
    children.add(child);
    child.stderr.setEncoding("utf8").on("data", (t: string) => (this.log = (this.log + t).slice(-4000)));
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once("exit", () => {
        children.delete(child);
        resolve();
      }),
    );
    void this.exited.then(() => {
      if (this.child === child) this.child = null;
    });
    await until(`nats-server n${this.index} listening on ${this.port}`, 10_000, async () => {
      if (this.child !== child) throw new Error(`nats-server n${this.index} exited:\n${this.log}`);
      return (await this.monitor<{ server_id: string }>("varz").catch(() => undefined)) ? true : undefined;
    });
  }

  async kill(): Promise<void> {
    const child = this.child;
    if (child === null) return;
    child.kill("SIGKILL");
    await this.exited;
    this.child = null;
  }

  async monitor<T>(path: string): Promise<T> {
    const res = await fetch(`http://127.0.0.1:${this.monitorPort}/${path}`);
    if (!res.ok) throw new Error(`nats monitor ${path}: HTTP ${res.status}`);
    return (await res.json()) as T;
  }
}
