"""Chat client for examples/quickstart, on the generated bindings in examples/quickstart_client/.

    spacetime-py start &  spacetime-py publish quickstart -p examples/quickstart
    python examples/chat_client.py [http://127.0.0.1:3000] [quickstart]   # lines: "/name NAME" or a message
"""

import asyncio
import sys

from quickstart_client import DbConnection, EventContext


def name(ctx: EventContext, identity) -> str:
    user = ctx.db.user.identity.find(identity)
    return (user and user.name) or identity.to_abbreviated_hex()


async def main(uri: str = "http://127.0.0.1:3000", db: str = "quickstart") -> None:
    conn = await (DbConnection.builder().with_uri(uri).with_database_name(db).with_token_file().connect())
    conn.db.message.on_insert(lambda ctx, m: print(f"{name(ctx, m.sender)}: {m.text}", flush=True))
    conn.db.user.on_update(lambda ctx, old, new: old.name != new.name and print(f"{old.name} is now {new.name}"))
    conn.db.user.on_insert(lambda ctx, u: u.online and print(f"{name(ctx, u.identity)} is online"))
    await conn.subscription_builder().subscribe(["SELECT * FROM user", "SELECT * FROM message"])
    loop = asyncio.get_running_loop()
    while line := (await loop.run_in_executor(None, sys.stdin.readline)):
        try:
            if line.startswith("/name "):
                await conn.reducers.set_name(line[6:].strip())
            elif line.strip():
                await conn.reducers.send_message(line.strip())
        except Exception as e:  # noqa: BLE001 - show the server's message and keep chatting
            print(f"error: {e}", flush=True)
    await conn.disconnect()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:3]))
