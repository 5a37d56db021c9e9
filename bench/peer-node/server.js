// The Node.js peer for bench/run.sh: chatkit-node-backend-sdk 1.1.2 served by node:http with an
// in-memory store and a respond() that streams N one-word text deltas, like chatkit-server's
// demo model. Flags mirror ours: --host, --port (0 = any free port), --demo-tokens N and
// --demo-delay-ms D. It prints "listening on http://HOST:PORT" when ready.
//
// It is written to give the peer its best shot: plain node:http (no framework), no logging (the
// SDK's default logger and its debug console.log are silenced after start-up), and a store
// that answers from memory without copying more than the SDK needs.
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChatKitServer, Store, StoreNotFoundError } from 'chatkit-node-backend-sdk';

function flag(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}
const host = flag('--host', '127.0.0.1');
const port = Number.parseInt(flag('--port', '0'), 10);
const tokens = Number.parseInt(flag('--demo-tokens', '0'), 10);
const delayMs = Number.parseInt(flag('--demo-delay-ms', '0'), 10);

const silent = { info() {}, warn() {}, error() {}, debug() {} };

// Keeps threads in insertion order (which is created_at order) and items per thread.
class MemoryStore extends Store {
  threads = new Map();
  items = new Map(); // thread id -> array of items in created_at order
  attachments = new Map();

  async loadThread(threadId) {
    const t = this.threads.get(threadId);
    if (!t) throw new StoreNotFoundError(`Thread ${threadId} not found`);
    return { ...t };
  }
  async saveThread(thread) {
    const { items: _items, ...meta } = thread;
    this.threads.set(thread.id, meta);
    if (!this.items.has(thread.id)) this.items.set(thread.id, []);
  }
  async deleteThread(threadId) {
    this.threads.delete(threadId);
    this.items.delete(threadId);
  }
  static page(all, after, limit, order) {
    const list = order === 'desc' ? [...all].reverse() : all;
    let start = 0;
    if (after) {
      const i = list.findIndex((x) => x.id === after);
      start = i < 0 ? list.length : i + 1;
    }
    const data = list.slice(start, start + limit);
    const hasMore = start + limit < list.length;
    return { data, has_more: hasMore, after: hasMore ? data[data.length - 1].id : null };
  }
  async loadThreads(limit, after, order) {
    return MemoryStore.page([...this.threads.values()], after, limit, order);
  }
  async loadThreadItems(threadId, after, limit, order) {
    return MemoryStore.page(this.items.get(threadId) || [], after, limit, order);
  }
  async addThreadItem(threadId, item) {
    let list = this.items.get(threadId);
    if (!list) this.items.set(threadId, (list = []));
    list.push(item);
  }
  async saveItem(threadId, item) {
    const list = this.items.get(threadId) || [];
    const i = list.findIndex((x) => x.id === item.id);
    if (i < 0) list.push(item);
    else list[i] = item;
    this.items.set(threadId, list);
  }
  async loadItem(threadId, itemId) {
    const item = (this.items.get(threadId) || []).find((x) => x.id === itemId);
    if (!item) throw new StoreNotFoundError(`Item ${itemId} not found`);
    return item;
  }
  async deleteThreadItem(threadId, itemId) {
    const list = this.items.get(threadId) || [];
    this.items.set(threadId, list.filter((x) => x.id !== itemId));
  }
  async saveAttachment(a) {
    this.attachments.set(a.id, a);
  }
  async loadAttachment(id) {
    const a = this.attachments.get(id);
    if (!a) throw new StoreNotFoundError(`Attachment ${id} not found`);
    return a;
  }
  async deleteAttachment(id) {
    this.attachments.delete(id);
  }
}

// The same reply text and word split as chatkit-server's demo model.
function userText(msg) {
  return (msg?.content || [])
    .map((p) => (p.type === 'input_tag' ? '@' : '') + (p.text || ''))
    .join('');
}
function words(text) {
  return text.match(/[^ ]+ */g) || [];
}

class DemoServer extends ChatKitServer {
  async *respond(thread, input, context) {
    const said = userText(input).slice(0, 200);
    const toks = words(
      `You said: "${said}". This is the built-in demo model of chatkit-server. Set ` +
        'OPENAI_API_KEY or OPENAI_BASE_URL to talk to a real model.'
    );
    const want = tokens > 0 ? tokens : toks.length;
    const id = this.store.generateItemId('message', thread, context);
    const createdAt = new Date().toISOString();
    yield {
      type: 'thread.item.added',
      item: { id, thread_id: thread.id, created_at: createdAt, type: 'assistant_message', content: [] },
    };
    if (!thread.title && input) thread.title = userText(input).slice(0, 40);
    yield {
      type: 'thread.item.updated',
      item_id: id,
      update: {
        type: 'assistant_message.content_part.added',
        content_index: 0,
        content: { type: 'output_text', text: '', annotations: [] },
      },
    };
    let full = '';
    for (let k = 0; k < want; k++) {
      if (k > 0 && delayMs > 0) await sleep(delayMs);
      const delta = toks[k % toks.length];
      full += delta;
      yield {
        type: 'thread.item.updated',
        item_id: id,
        update: { type: 'assistant_message.content_part.text_delta', content_index: 0, delta },
      };
    }
    const content = { type: 'output_text', text: full, annotations: [] };
    yield {
      type: 'thread.item.updated',
      item_id: id,
      update: { type: 'assistant_message.content_part.done', content_index: 0, content },
    };
    yield {
      type: 'thread.item.done',
      item: { id, thread_id: thread.id, created_at: createdAt, type: 'assistant_message', content: [content] },
    };
  }
}

const server = new DemoServer(new MemoryStore(), undefined, silent);

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function handle(req, res) {
  if (req.url === '/health') {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end('{"status":"ok"}');
    return;
  }
  if (req.url !== '/chatkit' || req.method !== 'POST') {
    res.writeHead(404, { 'Content-Type': 'application/json' });
    res.end('{"error":{"code":"not_found"}}');
    return;
  }
  const body = await readBody(req);
  let result;
  try {
    result = await server.process(body, { userId: 'bench' });
  } catch (e) {
    res.writeHead(e instanceof StoreNotFoundError ? 404 : 400, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ error: { code: 'error', message: String(e?.message || e) } }));
    return;
  }
  if (!result.isStreaming) {
    const json = result.toString();
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(json) });
    res.end(json);
    return;
  }
  res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
  // A client that leaves stops the generator at its next step, as a real server would.
  let gone = false;
  res.on('close', () => {
    gone = true;
  });
  for await (const chunk of result) {
    if (gone) break;
    res.write(chunk);
  }
  res.end();
}

const httpServer = http.createServer((req, res) => {
  handle(req, res).catch(() => {
    if (!res.headersSent) res.writeHead(500);
    res.end();
  });
});
httpServer.keepAliveTimeout = 60_000;
httpServer.listen(port, host, () => {
  process.stdout.write(`listening on http://${host}:${httpServer.address().port}\n`);
  // The SDK prints a debug line per threads.create with console.log; silence it for the run.
  console.log = () => {};
});
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
