// The official NATS JavaScript client (nats.ws, from npm) in Node over WebSocket.
//
//     npm ci --prefix examples
//     node --experimental-websocket examples/node-websocket.mjs ws://127.0.0.1:8080
//
// Node 22 has a global WebSocket; Node 20 needs --experimental-websocket. The program
// exercises what an application does and prints one JSON line per step, so a test (or you)
// can check it against any server with a `websocket { no_tls: true }` listener and JetStream:
// headers, a queue group, request/reply in both directions, a payload larger than a frame,
// and a JetStream stream with a pull consumer.
import {
  AckPolicy,
  connect,
  headers,
  StringCodec,
} from "./node_modules/nats.ws/esm/nats.js";

const sc = StringCodec();
const server = process.argv[2] ?? "ws://127.0.0.1:8080";
const report = (step, value) =>
  process.stdout.write(JSON.stringify({ step, ...value }) + "\n");

const nc = await connect({ servers: server, name: "node-websocket-example" });
report("connected", { server: nc.info.server_name, headers: nc.info.headers });

// Requests on node.echo get "node:" + their payload, from a queue group.
const echo = nc.subscribe("node.echo", { queue: "workers" });
(async () => {
  for await (const m of echo) m.respond(sc.encode("node:" + sc.decode(m.data)));
})();

// Headers to ourselves.
const own = nc.subscribe("node.self", { max: 1 });
const h = headers();
h.set("X-Example", "yes");
nc.publish("node.self", sc.encode("hi"), { headers: h });
for await (const m of own) {
  report("headers", { data: sc.decode(m.data), header: m.headers?.get("X-Example") });
}

// A payload larger than any frame, echoed by ourselves.
const big = new Uint8Array(300 * 1024).map((_, i) => i % 251);
const bigSub = nc.subscribe("node.big", { max: 1 });
nc.publish("node.big", big);
for await (const m of bigSub) {
  const same = m.data.length === big.length && m.data.every((b, i) => b === big[i]);
  report("big", { length: m.data.length, same });
}

// Request/reply to whoever answers on py.svc (the test's nats-py client).
const answer = await nc.request("py.svc", sc.encode("ping"), { timeout: 5000 });
report("request", { data: sc.decode(answer.data) });

// JetStream over the same WebSocket.
const jsm = await nc.jetstreamManager();
await jsm.streams.add({ name: "NODE", subjects: ["node.orders.>"] });
const js = nc.jetstream();
const acks = [];
for (let i = 0; i < 5; i++) {
  acks.push((await js.publish(`node.orders.${i}`, sc.encode(`order ${i}`))).seq);
}
await jsm.consumers.add("NODE", { durable_name: "worker", ack_policy: AckPolicy.Explicit });
const consumer = await js.consumers.get("NODE", "worker");
const got = [];
const batch = await consumer.fetch({ max_messages: 5, expires: 5000 });
for await (const m of batch) {
  got.push(sc.decode(m.data));
  m.ack();
}
// Acks are fire-and-forget: wait (bounded) until the consumer's ack floor has them all.
let info = await jsm.consumers.info("NODE", "worker");
for (let i = 0; i < 50 && info.ack_floor.stream_seq < got.length; i++) {
  await new Promise((r) => setTimeout(r, 100));
  info = await jsm.consumers.info("NODE", "worker");
}
report("jetstream", { acks, got, ack_floor: info.ack_floor.stream_seq });

// Tell the test we serve node.echo, then wait to be told to stop.
const stop = nc.subscribe("node.stop", { max: 1 });
await nc.flush();
report("serving", {});
for await (const m of stop) m.respond(sc.encode("bye"));
await nc.drain();
