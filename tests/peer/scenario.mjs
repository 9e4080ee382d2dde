// Drives a spacetime-py server with the official TypeScript client (npm `spacetimedb`).
//   node scenario.mjs <http uri> <database name>
// Prints one JSON object per line: {"step": ..., ...}; exits 0 when every step passed.
import { DbConnection } from './bindings.mjs';

const [uri, dbName] = process.argv.slice(2);
const TIMEOUT_MS = 15000;

function out(step, data = {}) {
  process.stdout.write(JSON.stringify({ step, ...data }) + '\n');
}

function fail(step, err) {
  out('fail', { at: step, error: String(err && err.stack ? err.stack : err) });
  process.exit(1);
}

function withTimeout(p, what) {
  let timer;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timeout: ${what}`)), TIMEOUT_MS);
    }),
  ]);
}

function connect({ token, compression } = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    let b = DbConnection.builder().withUri(uri).withDatabaseName(dbName);
    if (token) b = b.withToken(token);
    if (compression) b = b.withCompression(compression);
    b.onConnect((conn, identity, tok) => resolve({ conn, identity: identity.toHexString(), token: tok }))
      .onConnectError((_ctx, err) => reject(err))
      .build();
  }), 'connect');
}

function subscribe(conn, queries) {
  return withTimeout(new Promise((resolve, reject) => {
    const handle = conn.subscriptionBuilder()
      .onApplied(() => resolve(handle))
      .onError((_ctx, err) => reject(err || new Error('subscription error')))
      .subscribe(queries);
  }), `subscribe ${queries}`);
}

function names(conn) {
  return [...conn.db.person.iter()].map(p => p.name).sort();
}

async function main() {
  let step = 'connect anonymously';
  try {
    const a = await connect({ compression: 'gzip' });
    out(step, { identity: a.identity, tokenParts: a.token.split('.').length });

    step = 'reconnect with the saved token';
    const a2 = await connect({ token: a.token, compression: 'none' });
    out(step, { sameIdentity: a2.identity === a.identity });

    step = 'second client subscribes';
    const b = await connect();
    await subscribe(b.conn, ['SELECT * FROM person']);
    const inserted = [];
    const updated = [];
    const deleted = [];
    b.conn.db.person.onInsert((_ctx, row) => inserted.push(row.name));
    b.conn.db.person.onUpdate((_ctx, oldRow, newRow) => updated.push([oldRow.name, newRow.name]));
    b.conn.db.person.onDelete((_ctx, row) => deleted.push(row.name));
    out(step, { initial: names(b.conn) });

    step = 'subscribe and call a reducer';
    const handle = await subscribe(a.conn, ['SELECT * FROM person']);
    const before = names(a.conn);
    await withTimeout(a.conn.reducers.add({ name: 'Ada' }), 'add');
    out(step, { before, after: names(a.conn) });

    step = 'the other client sees the update';
    await withTimeout((async () => { while (!inserted.includes('Ada')) await new Promise(r => setTimeout(r, 10)); })(),
      'update at b');
    const ada = [...b.conn.db.person.iter()].find(p => p.name === 'Ada');
    await withTimeout(a.conn.reducers.rename({ id: ada.id, name: 'Ada L.' }), 'rename');
    await withTimeout((async () => { while (updated.length === 0) await new Promise(r => setTimeout(r, 10)); })(),
      'onUpdate at b');
    out(step, { inserted, updated, bNames: names(b.conn) });

    step = 'sender error';
    let senderError = null;
    try {
      await withTimeout(a.conn.reducers.add({ name: '' }), 'add empty');
    } catch (e) {
      senderError = { name: e.constructor.name, message: e.message };
    }
    out(step, { senderError });

    step = 'internal error';
    let internal = null;
    try {
      await withTimeout(a.conn.reducers.crash({}), 'crash');
    } catch (e) {
      internal = { name: e.constructor.name, message: e.message };
    }
    out(step, { internal });

    step = 'many calls in flight';
    await withTimeout(Promise.all(Array.from({ length: 20 }, (_, i) => a.conn.reducers.add({ name: `bulk${i}` }))),
      'bulk');
    out(step, { count: names(a.conn).length });

    step = 'unsubscribe';
    await withTimeout(new Promise(resolve => handle.unsubscribeThen(() => resolve())), 'unsubscribe');
    out(step, { rowsAfter: names(a.conn).length, ended: handle.isEnded() });

    step = 'disconnect';
    for (const c of [a.conn, a2.conn, b.conn]) c.disconnect();
    out(step);
    out('done');
    setTimeout(() => process.exit(0), 50);
  } catch (e) {
    fail(step, e);
  }
}

main();
