from module_sdk import ProcedureContext, ReducerContext, log, procedure, reducer, table, u32


@table(public=True)
class Seen:
    id: u32
    sub: str
    iss: str
    aud: str


@reducer
def who(ctx: ReducerContext) -> None:
    jwt = ctx.sender_auth.jwt
    log.info(f"jwt: {jwt and jwt.raw_payload}")
    if jwt is not None:
        ctx.db.seen.insert(Seen(id=len(list(ctx.db.seen)), sub=jwt.subject, iss=jwt.issuer, aud=",".join(jwt.audience)))


@procedure
def boom(ctx: ProcedureContext, n: u32) -> u32:
    if n > 1:
        raise ValueError(f"boom {n}")
    return n + 1
