"""Lexer and recursive-descent parser for SpacetimeDB's two SQL dialects (shared/spec/sql-subset.md).

`parse_sql(text)` parses the /sql dialect (SELECT with projections/COUNT/LIMIT and any number of joins,
INSERT, UPDATE, DELETE, SET, SHOW).  `parse_subscription(text)` parses the same text and then applies the
subscription restrictions (a SELECT returning one table's whole rows, at most two tables).  The AST is
untyped: literal typing and name resolution happen in `check.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import SqlError

MAX_TERMS = 1_600  # upstream's MAX_RECURSION_EXPR: AND/OR chains longer than this are rejected like upstream
MAX_DEPTH = 200  # parenthesis nesting (upstream allows deeper nesting; Python's stack does not)

# Words that cannot be an unquoted table alias / name (a subset of PostgreSQL's reserved list that matters here).
RESERVED = frozenset("""
ALL AND ANY AS ASC BETWEEN BY CASE CAST CROSS DELETE DESC DISTINCT ELSE END EXCEPT EXISTS FALSE FETCH FOR FROM
FULL GROUP HAVING ILIKE IN INNER INSERT INTERSECT INTO IS JOIN LEFT LIKE LIMIT NATURAL NOT NULL OFFSET ON OR
ORDER OUTER RIGHT SELECT SET SHOW THEN TO TRUE UNION UPDATE USING VALUES WHEN WHERE WINDOW WITH
""".split())


# ---------------------------------------------------------------------------------------------------- AST
@dataclass(frozen=True)
class Lit:
    kind: str  # "num" | "str" | "hex" | "bool"
    text: str  # numbers/hex: source text (with sign); strings: the unescaped value; bool: "true"/"false"

    def __str__(self) -> str:
        return {"str": f"'{self.text}'", "bool": self.text.upper()}.get(self.kind, self.text)


@dataclass(frozen=True)
class Col:
    table: str | None  # qualifier (table name or alias), dotted parts joined
    name: str

    def __str__(self) -> str:
        return f"{self.table}.{self.name}" if self.table else self.name


@dataclass(frozen=True)
class Param:
    name: str

    def __str__(self) -> str:
        return f":{self.name}"


@dataclass(frozen=True)
class Cmp:
    op: str  # = <> < <= > >=   ('!=' normalized to '<>')
    lhs: object
    rhs: object

    def __str__(self) -> str:
        return f"{self.lhs} {self.op} {self.rhs}"


@dataclass(frozen=True)
class Logic:
    op: str  # AND | OR
    lhs: object
    rhs: object

    def __str__(self) -> str:
        return f"({self.lhs} {self.op} {self.rhs})"


@dataclass(frozen=True)
class TableRef:
    name: str
    alias: str | None = None

    @property
    def var(self) -> str:
        return self.alias or self.name


@dataclass(frozen=True)
class Join:
    table: TableRef
    on: tuple[Col, Col] | None  # None: CROSS JOIN / JOIN without ON


@dataclass(frozen=True)
class Star:
    table: str | None = None  # `t.*` -> "t"


@dataclass(frozen=True)
class ProjCol:
    col: Col
    alias: str | None = None


@dataclass(frozen=True)
class Count:
    alias: str


@dataclass(frozen=True)
class Select:
    proj: object  # Star | tuple[ProjCol, ...] | Count
    from_: TableRef
    joins: tuple[Join, ...] = ()
    where: object = None
    limit: int | None = None

    @property
    def tables(self) -> tuple[TableRef, ...]:
        return (self.from_, *(j.table for j in self.joins))


@dataclass(frozen=True)
class Insert:
    table: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Lit, ...], ...]


@dataclass(frozen=True)
class Update:
    table: str
    assigns: tuple[tuple[str, Lit], ...]
    where: object = None


@dataclass(frozen=True)
class Delete:
    table: str
    where: object = None


@dataclass(frozen=True)
class SetVar:
    name: str
    value: Lit


@dataclass(frozen=True)
class ShowVar:
    name: str


# ---------------------------------------------------------------------------------------------------- lexer
@dataclass
class Tok:
    kind: str  # ident | num | str | hex | param | op | eof
    value: str
    pos: int
    quoted: bool = False

    def kw(self, *words: str) -> bool:
        return self.kind == "ident" and not self.quoted and self.value.upper() in words

    def __str__(self) -> str:
        if self.kind == "eof":
            return "EOF"
        if self.kind == "str":
            return f"'{self.value}'"
        if self.quoted:
            return f'"{self.value}"'
        return self.value


_OPS2 = ("<>", "!=", "<=", ">=", "::", "||", "=>", "==")  # `==` is `=` (as upstream's parser)
_OPS1 = "*,.()=<>+-/%;[]:"


def _perr(msg: str) -> SqlError:
    return SqlError(f"sql parser error: {msg}")


def _loc(s: str, pos: int) -> str:
    """Where `pos` is, as upstream's SQL parser (sqlparser) writes it in errors: 1-based line and column."""
    line_start = s.rfind("\n", 0, pos) + 1
    return f" at Line: {s.count(chr(10), 0, pos) + 1}, Column {pos - line_start + 1}"


def tokenize(s: str) -> list[Tok]:
    out: list[Tok] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        if c.isspace():
            i += 1
        elif c == "-" and s.startswith("--", i):
            j = s.find("\n", i)
            i = n if j < 0 else j + 1
        elif c == "/" and s.startswith("/*", i):
            j = s.find("*/", i + 2)
            if j < 0:
                raise _perr(f"Unexpected EOF while in a multi-line comment{_loc(s, n)}")
            i = j + 2
        elif c in "xX" and s.startswith("'", i + 1):
            j = s.find("'", i + 2)
            if j < 0:
                raise _perr(f"Unterminated string literal{_loc(s, i + 1)}")
            out.append(Tok("hex", "0x" + s[i + 2 : j], i))
            i = j + 1
        elif c.isalpha() or c == "_":
            j = i + 1
            while j < n and (s[j].isalnum() or s[j] in "_$"):
                j += 1
            out.append(Tok("ident", s[i:j], i))
            i = j
        elif c == '"':
            j, buf = i + 1, []
            while True:
                k = s.find('"', j)
                if k < 0:
                    raise _perr(f"Expected close delimiter '\"' before EOF.{_loc(s, i)}")
                buf.append(s[j:k])
                if s.startswith('"', k + 1):
                    buf.append('"')
                    j = k + 2
                    continue
                j = k + 1
                break
            out.append(Tok("ident", "".join(buf), i, quoted=True))
            i = j
        elif c == "'":
            j, buf = i + 1, []
            while True:
                k = s.find("'", j)
                if k < 0:
                    raise _perr(f"Unterminated string literal{_loc(s, i)}")
                buf.append(s[j:k])
                if s.startswith("'", k + 1):
                    buf.append("'")
                    j = k + 2
                    continue
                j = k + 1
                break
            out.append(Tok("str", "".join(buf), i))
            i = j
        elif c.isdigit() or (c == "." and i + 1 < n and s[i + 1].isdigit()):
            if c == "0" and s[i + 1 : i + 2] in ("x", "X"):
                j = i + 2
                while j < n and (s[j].isalnum()):
                    j += 1
                out.append(Tok("hex", s[i:j], i))
                i = j
                continue
            j = i
            while j < n and s[j].isdigit():
                j += 1
            if j < n and s[j] == ".":
                j += 1
                while j < n and s[j].isdigit():
                    j += 1
            if j < n and s[j] in "eE":
                k = j + 1
                if k < n and s[k] in "+-":
                    k += 1
                if k < n and s[k].isdigit():
                    while k < n and s[k].isdigit():
                        k += 1
                    j = k
            if j < n and (s[j].isalpha() or s[j] == "_"):
                raise _perr(f"Expected: end of number, found: {s[j]} at position {j}")
            out.append(Tok("num", s[i:j], i))
            i = j
        elif c == ":" and i + 1 < n and (s[i + 1].isalpha() or s[i + 1] == "_"):
            j = i + 2
            while j < n and (s[j].isalnum() or s[j] == "_"):
                j += 1
            out.append(Tok("param", s[i + 1 : j], i))
            i = j
        else:
            op = s[i : i + 2]
            if op in _OPS2:
                out.append(Tok("op", "=" if op == "==" else op, i))
                i += 2
            elif c in _OPS1:
                out.append(Tok("op", c, i))
                i += 1
            else:  # as upstream's tokenizer: any other character is a token no rule accepts
                out.append(Tok("op", c, i))
                i += 1
    out.append(Tok("eof", "", n))
    return out


# ---------------------------------------------------------------------------------------------------- parser
class _Parser:
    def __init__(self, text: str, sub: bool = False):
        self.text = text
        self.sub = sub
        self.toks = tokenize(text)
        self.i = 0
        self.depth = 0
        self.terms = 0

    # -- helpers
    @property
    def tok(self) -> Tok:
        return self.toks[self.i]

    def peek(self, k: int = 1) -> Tok:
        return self.toks[min(self.i + k, len(self.toks) - 1)]

    def next(self) -> Tok:
        t = self.toks[self.i]
        if t.kind != "eof":
            self.i += 1
        return t

    def is_op(self, *ops: str) -> bool:
        return self.tok.kind == "op" and self.tok.value in ops

    def accept_op(self, op: str) -> bool:
        if self.is_op(op):
            self.i += 1
            return True
        return False

    def accept_kw(self, *words: str) -> bool:
        if self.tok.kw(*words):
            self.i += 1
            return True
        return False

    def expected(self, what: str) -> SqlError:
        """Upstream's (sqlparser's) wording: `Expected <what>, found: <token> at Line: l, Column c`."""
        t = self.tok
        return _perr(f"Expected {what}, found: {t}{'' if t.kind == 'eof' else _loc(self.text, t.pos)}")

    def expect_op(self, op: str) -> None:
        if not self.accept_op(op):
            raise self.expected(op)

    def expect_kw(self, word: str) -> None:
        if not self.accept_kw(word):
            raise self.expected(word)

    def unsupported(self, what: str) -> SqlError:
        return SqlError(f"Unsupported: {what}")

    def unsupported_select(self) -> SqlError:
        """A SELECT clause outside the dialect: subscriptions and /sql word it differently upstream."""
        return SqlError(f"Unsupported SELECT: {self.query_text()}" if self.sub else f"Unsupported: {self.query_text()}")

    def ident(self, what: str = "identifier") -> str:
        t = self.tok
        if t.kind == "ident" and (t.quoted or t.value.upper() not in RESERVED):
            self.i += 1
            return t.value
        raise self.expected(what)

    def path(self) -> list[str]:
        parts = [self.ident()]
        while self.is_op(".") and self.peek().kind == "ident":
            self.i += 1
            parts.append(self.ident())
        return parts

    # -- statements
    def statement(self):
        t = self.tok
        if t.kind == "eof" or (t.kind == "op" and t.value == ";" and self.peek().kind == "eof"):
            raise SqlError("Empty SQL query")
        if t.kw("SELECT"):
            stmt = self.select()
        elif t.kw("WITH"):
            raise self.unsupported(self.query_text())
        elif t.kind == "op" and t.value == "(":
            raise self.unsupported(self.query_text())
        elif t.kw("INSERT"):
            stmt = self.insert()
        elif t.kw("UPDATE"):
            stmt = self.update()
        elif t.kw("DELETE"):
            stmt = self.delete()
        elif t.kw("SET"):
            stmt = self.set_var()
        elif t.kw("SHOW"):
            stmt = self.show_var()
        elif t.kw("DROP") and self.peek().kw("TABLE"):
            raise self.unsupported(self.query_text())
        else:
            raise self.expected("an SQL statement")
        if self.tok.kw("UNION", "INTERSECT", "EXCEPT"):
            raise SqlError(f"Unsupported set operation: {self.query_text()}")
        if self.tok.kw("ORDER", "OFFSET", "FETCH", "FOR"):
            raise self.unsupported(self.query_text())
        if self.accept_op(";"):
            while self.accept_op(";"):
                pass
            if self.tok.kind != "eof":
                try:
                    self.statement()
                except SqlError as e:
                    if str(e).startswith("sql parser error: "):
                        raise
                raise SqlError("Multiple SQL statements are not supported")
        if self.tok.kind != "eof":
            raise self.expected("end of statement")
        return stmt

    def query_text(self) -> str:
        return " ".join(self.text.strip().rstrip(";").split())

    def select(self) -> Select:
        self.expect_kw("SELECT")
        if self.tok.kw("DISTINCT", "ALL"):
            raise self.unsupported_select()
        proj = self.projection()
        if not self.accept_kw("FROM"):  # upstream parses a SELECT without FROM, then refuses it
            if self.tok.kind == "eof" or self.is_op(";") or self.tok.kw("WHERE", "GROUP", "HAVING", "LIMIT"):
                raise SqlError("A FROM clause is required")
            raise self.expected("end of statement")
        from_, joins = self.from_clause()
        where = None
        if self.accept_kw("WHERE"):
            where = self.expr()
        if self.tok.kw("GROUP", "HAVING", "WINDOW", "QUALIFY"):
            raise self.unsupported_select()
        if self.tok.kw("ORDER", "OFFSET", "FETCH", "FOR"):
            if self.tok.kw("ORDER") and self.peek().kw("BY") and self.peek(2).kind == "eof":
                self.i += 2
                raise self.expected("an expression:")
            raise self.unsupported(self.query_text())
        limit = None
        if self.accept_kw("LIMIT"):  # upstream: LIMIT ALL is no limit, a number must be a u64
            t = self.next()
            if t.kind == "num":
                if not t.value.isdigit():
                    raise SqlError(f"The literal expression `{t.value}` cannot be parsed as type `U64`")
                limit = int(t.value)
            elif not t.kw("ALL"):
                raise self.unsupported(self.query_text())
        return Select(proj, from_, tuple(joins), where, limit)

    def projection(self):
        items = [self.proj_item()]
        while self.accept_op(","):
            items.append(self.proj_item())
        stars = [i for i in items if isinstance(i, Star)]
        if stars:
            if len(items) > 1:
                raise SqlError("Mixed wildcard projections are not supported")
            return stars[0]
        counts = [i for i in items if isinstance(i, Count)]
        if counts:
            if len(items) > 1:
                raise SqlError("Unsupported projection: COUNT(*) with other projection items")
            return counts[0]
        return tuple(items)

    def proj_item(self):
        if self.accept_op("*"):
            return Star(None)
        t = self.tok
        if t.kind == "ident" and self.peek().kind == "op" and self.peek().value == "(":
            return self.aggregate()
        if t.kind != "ident":
            expr = self.expr()
            raise SqlError(f"Unsupported projection expression: {expr}")
        parts = [self.ident("a projection")]
        while self.accept_op("."):
            if self.accept_op("*"):
                return Star(".".join(parts))
            parts.append(self.ident())
        col = Col(".".join(parts[:-1]) or None, parts[-1])
        if self.tok.kind == "op" and self.tok.value not in (",",):
            raise SqlError(f"Unsupported projection expression: {self.rest_text(t)}")
        if self.tok.kw("IS", "IN", "BETWEEN", "LIKE", "NOT", "AND", "OR"):
            raise SqlError(f"Unsupported projection expression: {self.rest_text(t)}")
        alias = self.opt_alias()
        return ProjCol(col, alias)

    def rest_text(self, start: Tok) -> str:
        end = self.tok.pos
        j = self.i
        while self.toks[j].kind != "eof" and not self.toks[j].kw("FROM") and not (
            self.toks[j].kind == "op" and self.toks[j].value == ","
        ):
            j += 1
        end = self.toks[j].pos
        return self.text[start.pos:end].strip()

    def aggregate(self):
        start = self.tok
        name = self.next().value
        self.expect_op("(")
        depth = 1
        while depth and self.tok.kind != "eof":
            t = self.next()
            if t.kind == "op" and t.value == "(":
                depth += 1
            elif t.kind == "op" and t.value == ")":
                depth -= 1
        text = self.text[start.pos : self.toks[self.i - 1].pos + 1]
        norm = " ".join(text.split())
        if name.upper() != "COUNT" or norm.upper().replace(" ", "") != "COUNT(*)":
            raise SqlError(f"Unsupported aggregate function: {norm}")
        alias = self.opt_alias()
        if alias is None:
            if self.sub:
                raise SqlError("Column projections are not supported in subscriptions; "
                               "Subscriptions must return a table type")
            raise SqlError("Aggregate expressions must have column aliases")
        return Count(alias)

    def opt_alias(self) -> str | None:
        if self.accept_kw("AS"):
            return self.ident("an alias")
        t = self.tok
        if t.kind == "ident" and (t.quoted or t.value.upper() not in RESERVED):
            self.i += 1
            return t.value
        return None

    def table_ref(self) -> TableRef:
        if self.is_op("("):
            raise SqlError(f"Unsupported FROM expression: {self.query_text()}")
        name = ".".join(self.path())
        if self.is_op("("):
            raise SqlError(f"Unsupported FROM expression: {name}(...)")
        return TableRef(name, self.opt_alias())

    def from_clause(self) -> tuple[TableRef, list[Join]]:
        first = self.table_ref()
        joins: list[Join] = []
        while True:
            if self.is_op(","):
                raise SqlError("Implicit joins are not supported")
            if self.tok.kw("LEFT", "RIGHT", "FULL", "NATURAL", "OUTER", "SEMI", "ANTI", "LATERAL") or (
                self.tok.kw("CROSS") and self.peek().kw("APPLY")
            ):
                raise SqlError("Non-inner joins are not supported")
            if self.accept_kw("CROSS"):
                self.expect_kw("JOIN")
                joins.append(Join(self.table_ref(), None))
                continue
            if self.tok.kw("INNER") or self.tok.kw("JOIN"):
                self.accept_kw("INNER")
                self.expect_kw("JOIN")
                tref = self.table_ref()
                on = None
                if self.accept_kw("ON"):
                    e = self.expr()
                    if not (isinstance(e, Cmp) and e.op == "=" and isinstance(e.lhs, Col) and isinstance(e.rhs, Col)):
                        raise SqlError("Non-inner joins are not supported")
                    on = (e.lhs, e.rhs)
                elif self.tok.kw("USING"):
                    raise SqlError("Non-inner joins are not supported")
                joins.append(Join(tref, on))
                continue
            return first, joins

    def insert(self) -> Insert:
        self.expect_kw("INSERT")
        self.expect_kw("INTO")
        table = ".".join(self.path())
        cols: list[str] = []
        if self.accept_op("("):
            cols.append(self.ident("a column name"))
            while self.accept_op(","):
                cols.append(self.ident("a column name"))
            self.expect_op(")")
        if self.tok.kw("SELECT") or self.is_op("("):
            raise SqlError(f"Unsupported INSERT expression: {self.query_text()}")
        self.expect_kw("VALUES")
        rows = [self.value_row()]
        while self.accept_op(","):
            rows.append(self.value_row())
        return Insert(table, tuple(cols), tuple(rows))

    def value_row(self) -> tuple[Lit, ...]:
        self.expect_op("(")
        vals = [self.dml_literal("INSERT value")]
        while self.accept_op(","):
            vals.append(self.dml_literal("INSERT value"))
        self.expect_op(")")
        return tuple(vals)

    def dml_literal(self, what: str) -> Lit:
        e = self.expr()
        if isinstance(e, Lit):
            return e
        if what == "INSERT value":
            raise SqlError(f"Unsupported INSERT value: {e}")
        raise SqlError(f"Unsupported column/variable assignment expression: {e}")

    def update(self) -> Update:
        self.expect_kw("UPDATE")
        table = ".".join(self.path())
        if not self.tok.kw("SET"):
            if self.tok.kind == "ident":
                raise SqlError(f"Unsupported: UPDATE with a table alias: {self.query_text()}")
            raise self.expected("SET")
        self.expect_kw("SET")
        assigns = [self.assign()]
        while self.accept_op(","):
            assigns.append(self.assign())
        if self.tok.kw("FROM"):
            raise SqlError(f"Unsupported: UPDATE ... FROM: {self.query_text()}")
        where = self.expr() if self.accept_kw("WHERE") else None
        return Update(table, tuple(assigns), where)

    def assign(self) -> tuple[str, Lit]:
        parts = self.path()
        self.expect_op("=")
        return parts[-1], self.dml_literal("assignment")

    def delete(self) -> Delete:
        self.expect_kw("DELETE")
        if not self.accept_kw("FROM"):  # `DELETE t FROM ...` parses upstream (MySQL's multi-table form)
            self.path()
            self.expect_kw("FROM")
            raise self.unsupported(self.query_text())
        table = ".".join(self.path())
        if self.is_op(",") or self.tok.kw("JOIN", "INNER", "CROSS", "USING"):
            raise SqlError("Multi-table DELETE is not supported")
        if self.tok.kind == "ident" and not self.tok.kw("WHERE"):
            raise SqlError(f"Unsupported table expression in DELETE: {self.query_text()}")
        where = self.expr() if self.accept_kw("WHERE") else None
        return Delete(table, where)

    def set_var(self) -> SetVar:
        self.expect_kw("SET")
        name = self.ident("a variable name")
        if not (self.accept_op("=") or self.accept_kw("TO")):
            raise self.expected("= or TO")
        return SetVar(name, self.dml_literal("assignment"))

    def show_var(self) -> ShowVar:
        self.expect_kw("SHOW")
        return ShowVar(self.ident("a variable name"))

    # -- expressions
    def expr(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise SqlError("Recursion limit exceeded, `parse_expr`")
        try:
            lhs = self.and_expr()
            while self.accept_kw("OR"):
                self.count_term()
                lhs = Logic("OR", lhs, self.and_expr())
            return lhs
        finally:
            self.depth -= 1

    def count_term(self) -> None:
        self.terms += 1
        if self.terms > MAX_TERMS:
            raise SqlError("Recursion limit exceeded, `parse_expr`")

    def and_expr(self):
        lhs = self.cmp_expr()
        while self.accept_kw("AND"):
            self.count_term()
            lhs = Logic("AND", lhs, self.cmp_expr())
        return lhs

    def cmp_expr(self):
        if self.tok.kw("NOT"):
            start = self.tok
            self.next()
            self.cmp_expr()
            raise SqlError(f"Unsupported expression: {self.text[start.pos:self.tok.pos].strip()}")
        lhs = self.primary()
        while True:
            t = self.tok
            if t.kind == "op" and t.value in ("=", "<>", "!=", "<", "<=", ">", ">="):
                self.next()
                rhs = self.primary()
                lhs = Cmp("<>" if t.value == "!=" else t.value, lhs, rhs)
                continue
            if t.kind == "op" and t.value in ("+", "-", "*", "/", "%", "||"):
                raise SqlError(f"Unsupported binary operator: {t.value}")
            if t.kw("IS", "IN", "BETWEEN", "LIKE", "ILIKE", "SIMILAR") or (
                t.kw("NOT") and self.peek().kw("IN", "BETWEEN", "LIKE", "ILIKE")
            ):
                raise SqlError(f"Unsupported expression: {lhs} {self.text[t.pos:].strip().rstrip(';')}")
            if t.kind == "op" and t.value == "::":
                raise SqlError(f"Unsupported expression: {lhs}::{self.peek()}")
            return lhs

    def primary(self):
        t = self.tok
        if t.kind == "op" and t.value == "(":
            self.next()
            if self.tok.kw("SELECT"):
                raise SqlError(f"Unsupported expression: (subquery) in {self.query_text()}")
            e = self.expr()
            self.expect_op(")")
            return e
        if t.kind == "op" and t.value in ("-", "+"):
            self.next()
            n = self.tok
            if n.kind == "num":
                self.next()
                return Lit("num", ("-" if t.value == "-" else "") + n.value)
            raise SqlError(f"Unsupported expression: {t.value}{n}")
        if t.kind == "num":
            self.next()
            return Lit("num", t.value)
        if t.kind == "str":
            self.next()
            return Lit("str", t.value)
        if t.kind == "hex":
            self.next()
            return Lit("hex", t.value)
        if t.kind == "param":
            self.next()
            return Param(t.value)
        if t.kind == "ident" and not t.quoted:
            up = t.value.upper()
            if up in ("TRUE", "FALSE"):
                self.next()
                return Lit("bool", up.lower())
            if up == "NULL":
                raise SqlError("Unsupported literal expression: NULL")
            if up in ("CASE", "EXISTS", "CAST", "INTERVAL", "DATE", "TIMESTAMP", "ARRAY"):
                raise SqlError(f"Unsupported expression: {self.text[t.pos:].strip().rstrip(';')}")
        if t.kind == "ident":
            if self.peek().kind == "op" and self.peek().value == "(":
                raise SqlError(f"Unsupported expression: {t.value}(...)")
            parts = self.path_expr()
            return Col(".".join(parts[:-1]) or None, parts[-1])
        raise self.expected("an expression:")  # sic: upstream's parser says "an expression:"

    def path_expr(self) -> list[str]:
        t = self.next()
        parts = [t.value]
        while self.is_op(".") and self.peek().kind == "ident":
            self.next()
            parts.append(self.next().value)
        return parts



def parse_sql(text: str):
    """Parse one /sql statement; SqlError on anything the dialect rejects."""
    return _Parser(text).statement()


def parse_subscription(text: str) -> Select:
    """Parse one subscription query and apply the subscription-only syntax rules."""
    p = _Parser(text, sub=True)
    t = p.tok
    if t.kind == "eof" or (t.kind == "op" and t.value == ";" and p.peek().kind == "eof"):
        raise SqlError("Empty SQL query")
    if t.kw("INSERT", "UPDATE", "DELETE", "SET", "SHOW"):
        raise SqlError("Unsupported: Non-SELECT queries")
    stmt = p.statement()
    if not isinstance(stmt, Select):
        raise SqlError("Unsupported: Non-SELECT queries")
    if stmt.limit is not None:
        raise SqlError(f"Unsupported: {p.query_text()}")
    if not isinstance(stmt.proj, Star):
        raise SqlError(
            "Column projections are not supported in subscriptions; Subscriptions must return a table type")
    return stmt

