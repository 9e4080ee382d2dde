"""A module that serves HTTP: `@http_handler` functions routed by a `@router`.

Build:   spacetime-py build examples/http_api
Serve:   the routes answer at /v1/database/<db>/route<path>, without authentication:

    curl http://127.0.0.1:3000/v1/database/<db>/route/get              -> 200 "ok"  (as upstream's module-test)
    curl -X POST --data 'milk' http://127.0.0.1:3000/v1/database/<db>/route/notes   -> 201 {"id": 1}
    curl http://127.0.0.1:3000/v1/database/<db>/route/notes            -> 200 "1: milk\\n"
    curl http://127.0.0.1:3000/v1/database/<db>/route/echo?x=1         -> 200, the request described as text

The notes are also a table and a query-builder view (`SELECT * FROM short_notes` over SQL or a subscription).
"""

from module_sdk import (
    AnonymousViewContext,
    HandlerContext,
    Query,
    ReducerContext,
    Request,
    Response,
    Router,
    Timestamp,
    TxContext,
    http_handler,
    primary_key,
    reducer,
    router,
    table,
    u64,
    view,
)


@table(public=True)
class Note:
    id: u64 = primary_key(auto_inc=True)
    text: str
    created: Timestamp


@reducer
def add_note(ctx: ReducerContext, text: str) -> None:
    ctx.db.note.insert(Note(id=0, text=text, created=ctx.timestamp))


@view
def short_notes(ctx: AnonymousViewContext) -> Query[Note]:
    """A query-builder view: the server runs the SQL it returns (and keeps subscribers up to date)."""
    return ctx.from_.note.where(lambda n: n.text < "m")


@http_handler
def get_simple(ctx: HandlerContext, req: Request) -> Response:
    return Response("ok")


@http_handler
def list_notes(ctx: HandlerContext, req: Request) -> Response:
    def read(tx: TxContext) -> str:
        return "".join(f"{n.id}: {n.text}\n" for n in sorted(tx.db.note, key=lambda n: n.id))

    return Response(ctx.with_tx(read), headers={"content-type": "text/plain; charset=utf-8"})


@http_handler
def create_note(ctx: HandlerContext, req: Request) -> Response:
    text = req.text().strip()
    if not text:
        return Response("empty note", status=400)

    def insert(tx: TxContext) -> int:
        return tx.db.note.insert(Note(id=0, text=text, created=tx.timestamp)).id

    note_id = ctx.with_tx(insert)
    return Response(f'{{"id": {note_id}}}', status=201, headers={"content-type": "application/json"})


@http_handler
def echo(ctx: HandlerContext, req: Request) -> Response:
    lines = [f"method={req.method}", f"path={req.path}", f"query={req.query}",
             f"x-test={req.header('x-test')}", f"body={req.text()}"]
    return Response("\n".join(lines), headers=[("x-echo", "1"), ("x-echo", "2")])


@http_handler
def fail(ctx: HandlerContext, req: Request) -> Response:
    raise RuntimeError("handler exploded")


@router
def routes() -> Router:
    notes = Router().get("/", list_notes).post("/", create_note)  # nested at /notes: "/" is "/notes" itself
    return Router().get("/get", get_simple).nest("/notes", notes).any("/echo", echo).get("/fail", fail)
