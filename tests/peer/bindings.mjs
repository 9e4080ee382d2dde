// Hand-written client bindings for the WebSocket test module (tests/test_server_ws_common.py MODULE), in the
// shape `spacetime generate --lang typescript` produces for SpacetimeDB 2.x, built from the SDK's own
// schema helpers.
import {
  DbConnectionBuilder,
  DbConnectionImpl,
  SubscriptionBuilderImpl,
  procedures,
  reducerSchema,
  reducers,
  schema,
  t,
  table,
} from 'spacetimedb';

const PersonRow = t.row({ id: t.u32().primaryKey(), name: t.string() });
const NoteRow = t.row({ id: t.u32().primaryKey(), text: t.string() });
const SettingsRow = t.row({ id: t.u32().primaryKey(), reject_connections: t.bool() });
const OnlineRow = t.row({ identity_hex: t.string().primaryKey() });
const ChirpRow = t.row({ text: t.string() });

const tablesSchema = schema({
  person: table({ name: 'person', public: true }, PersonRow),
  note: table({ name: 'note', public: true }, NoteRow),
  settings: table({ name: 'settings', public: true }, SettingsRow),
  online: table({ name: 'online', public: true }, OnlineRow),
  chirp: table({ name: 'chirp', public: true, event: true }, ChirpRow),
});

const reducersSchema = reducers(
  reducerSchema('add', { name: t.string() }),
  reducerSchema('add_many', { prefix: t.string(), n: t.u32() }),
  reducerSchema('rename', { id: t.u32(), name: t.string() }),
  reducerSchema('remove', { id: t.u32() }),
  reducerSchema('note', { text: t.string() }),
  reducerSchema('chirp', { text: t.string() }),
  reducerSchema('noop', {}),
  reducerSchema('crash', {}),
  reducerSchema('set_reject', { reject: t.bool() }),
);

const proceduresSchema = procedures();

const REMOTE_MODULE = {
  versionInfo: { cliVersion: '2.0.0' },
  tables: tablesSchema.schemaType.tables,
  reducers: reducersSchema.reducersType.reducers,
  ...proceduresSchema,
};

export class SubscriptionBuilder extends SubscriptionBuilderImpl {}

export class DbConnection extends DbConnectionImpl {
  static builder = () => new DbConnectionBuilder(REMOTE_MODULE, config => new DbConnection(config));

  subscriptionBuilder = () => new SubscriptionBuilder(this);
}
