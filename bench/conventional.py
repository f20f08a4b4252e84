"""`GET /calls` written the way most teams would: the baseline that issue 5 measures us against.

FastAPI with a sync route (run in FastAPI's threadpool), a SQLAlchemy `Session` per request from a
dependency, the declarative ORM model `Call`, and `response_model=CallsPage`, which validates every
ORM object into a Pydantic `CallOut` and dumps it. The query itself is a good one (row-value keyset,
an index per filter), so what a measurement sees is the cost of the stack, not of a bad plan.

    load(database_url, calls) -> int        setup: table, indexes and rows through the plain driver
    create_app(database_url, *, account_id, client_id, client_secret, public_url=...) -> FastAPI
    python bench/conventional.py serve --database-url URL --port N --account-id A \\
        --client-id X --client-secret Y [--host H] [--public-url URL]

Database URLs are those of `phonewagon-server --database-url`: `sqlite:///<path>` (a bare path is
taken as a SQLite file too) or `postgresql://...`, whose query parameters, such as
`?options=-csearch_path%3Dschema`, go to psycopg 3 as connection parameters.
"""

import argparse
import operator
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any, ClassVar
from urllib.parse import urlencode

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, ConfigDict
from sqlalchemy import BigInteger, Engine, Index, Integer, Text, create_engine, select, text, tuple_
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column
from sqlalchemy.schema import CreateTable

MAX_PAGE_SIZE = 1000
REALM = 'Basic realm="phonewagon"'


class Base(DeclarativeBase):
    # BIGINT for epoch milliseconds; plain INTEGER on SQLite, so that `id` is the rowid.
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        int: BigInteger().with_variant(Integer, "sqlite"),
        str: Text,
    }


class Call(Base):
    __tablename__ = "conventional_calls"

    account_id: Mapped[int]
    ad_position: Mapped[str]
    campaign_id: Mapped[str]
    campaign_name: Mapped[str]
    company_id: Mapped[int]
    contact_name: Mapped[str]
    device: Mapped[str]
    direction: Mapped[str]
    duration: Mapped[int]
    fbclid: Mapped[str]
    from_number: Mapped[str]
    gclid: Mapped[str]
    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    is_first_time_caller: Mapped[bool]
    keyword: Mapped[str]
    landing_page: Mapped[str]
    match_type: Mapped[str]
    msclkid: Mapped[str]
    network: Mapped[str]
    recording_url: Mapped[str]
    referral_value: Mapped[str]
    sid: Mapped[str]
    start_time: Mapped[int]
    status: Mapped[str]
    to_number: Mapped[str]
    unbounce_page_id: Mapped[str]
    unbounce_variant_id: Mapped[str]
    unbounce_visitor_id: Mapped[str]
    user_source: Mapped[str]
    utm_campaign: Mapped[str]
    utm_content: Mapped[str]
    utm_medium: Mapped[str]
    utm_source: Mapped[str]
    utm_term: Mapped[str]


NEWEST_FIRST = (Call.start_time.desc(), Call.id.desc())
Index("conventional_calls_account", Call.account_id, *NEWEST_FIRST)
Index("conventional_calls_company", Call.account_id, Call.company_id, *NEWEST_FIRST)
Index("conventional_calls_campaign", Call.account_id, Call.campaign_id, *NEWEST_FIRST)
COLUMNS = tuple(Call.__table__.columns.keys())


class CallOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    account_id: int
    ad_position: str
    campaign_id: str
    campaign_name: str
    company_id: int
    contact_name: str
    device: str
    direction: str
    duration: int
    fbclid: str
    from_number: str
    gclid: str
    id: int
    is_first_time_caller: bool
    keyword: str
    landing_page: str
    match_type: str
    msclkid: str
    network: str
    recording_url: str
    referral_value: str
    sid: str
    start_time: int
    status: str
    to_number: str
    unbounce_page_id: str
    unbounce_variant_id: str
    unbounce_visitor_id: str
    user_source: str
    utm_campaign: str
    utm_content: str
    utm_medium: str
    utm_source: str
    utm_term: str


class CallsPage(BaseModel):
    calls: list[CallOut]
    next: str | None = None


def make_engine(database_url: str) -> Engine:
    """A SQLAlchemy engine for a `phonewagon-server`-style database URL (see the module doc)."""
    scheme, _, rest = database_url.partition("://")
    if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
        return create_engine(f"postgresql+psycopg://{rest}")
    if not rest:
        database_url = f"sqlite:///{Path(database_url).resolve()}"
    # As FastAPI's SQL tutorial has it: the threadpool may hand a connection to another thread.
    return create_engine(database_url, connect_args={"check_same_thread": False})


def load(database_url: str, calls: Iterable[dict[str, Any]]) -> int:
    """Create `conventional_calls` and its indexes if missing, insert `calls`; rows inserted.

    Setup, not what is measured: the plain driver writes every row in one transaction (SQLite one
    streaming `executemany`, PostgreSQL `COPY`), missing indexes are built after the rows, then
    ANALYZE, so that the planner has the statistics a database in service would have.
    """
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(CreateTable(Call.__table__, if_not_exists=True))
            driver = connection.connection.driver_connection
            rows = map(operator.itemgetter(*COLUMNS), calls)
            if engine.dialect.name == "postgresql":
                loaded = _copy_rows(driver, rows)
            else:
                placeholders = ", ".join("?" * len(COLUMNS))
                loaded = driver.executemany(
                    f"INSERT INTO {Call.__tablename__} ({', '.join(COLUMNS)})"
                    f" VALUES ({placeholders})",
                    rows,
                ).rowcount
            for index in Call.__table__.indexes:
                index.create(connection, checkfirst=True)
        with engine.begin() as connection:
            connection.execute(text(f"ANALYZE {Call.__tablename__}"))
    finally:
        engine.dispose()
    return int(loaded)


def _copy_rows(driver: Any, rows: Iterable[tuple[Any, ...]]) -> int:
    with driver.cursor() as cursor:
        with cursor.copy(f"COPY {Call.__tablename__} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return int(cursor.rowcount)


def create_app(
    database_url: str,
    *,
    account_id: int,
    client_id: str,
    client_secret: str,
    public_url: str = "http://127.0.0.1:8000",
) -> FastAPI:
    """The app: `GET /calls` of `account_id`, for whoever presents `client_id:client_secret`."""
    engine = make_engine(database_url)
    basic = HTTPBasic(realm="phonewagon")

    def get_session() -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    def authenticate(credentials: Annotated[HTTPBasicCredentials, Depends(basic)]) -> int:
        # Both halves compared in constant time, always, so neither shows which one was wrong.
        good_id = secrets.compare_digest(credentials.username.encode(), client_id.encode())
        good_secret = secrets.compare_digest(credentials.password.encode(), client_secret.encode())
        if not (good_id and good_secret):
            raise HTTPException(401, "Invalid credentials", headers={"WWW-Authenticate": REALM})
        return account_id

    session_dep = Annotated[Session, Depends(get_session)]
    account_dep = Annotated[int, Depends(authenticate)]
    app = FastAPI(title="Phonewagon conventional baseline")

    @app.get("/calls", response_model=CallsPage, response_model_exclude_none=True)
    def list_calls(
        session: session_dep,
        account: account_dep,
        company_id: int | None = None,
        campaign_id: str | None = None,
        start_time: Annotated[int, Query(ge=0)] = 0,
        end_time: Annotated[int | None, Query(ge=0)] = None,
        before_id: Annotated[int | None, Query(ge=0)] = None,
        page_size: Annotated[int, Query(ge=1)] = MAX_PAGE_SIZE,
    ) -> dict[str, Any]:
        page_size = min(page_size, MAX_PAGE_SIZE)
        end_time = int(time.time() * 1000) if end_time is None else end_time
        query = select(Call).where(Call.account_id == account, Call.start_time >= start_time)
        if company_id is not None:
            query = query.where(Call.company_id == company_id)
        if campaign_id is not None:
            query = query.where(Call.campaign_id == campaign_id)
        if before_id is None:
            query = query.where(Call.start_time <= end_time)
        else:
            # Resume after the last call sent: one index range, at any depth. The spelled-out
            # `start_time < ? OR (start_time = ? AND id < ?)` would not bound the scan.
            query = query.where(tuple_(Call.start_time, Call.id) < (end_time, before_id))
        rows = session.scalars(query.order_by(*NEWEST_FIRST).limit(page_size + 1)).all()
        page = rows[:page_size]
        next_url = None
        if len(rows) > page_size:
            params: dict[str, Any] = {"company_id": company_id, "campaign_id": campaign_id}
            params = {name: value for name, value in params.items() if value is not None}
            params |= {"page_size": page_size, "start_time": start_time}
            params |= {"end_time": page[-1].start_time, "before_id": page[-1].id}
            next_url = f"{public_url}/calls?{urlencode(params)}"
        return {"calls": page, "next": next_url}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the baseline under uvicorn, one worker")
    serve.add_argument("--database-url", required=True)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, required=True)
    serve.add_argument("--account-id", type=int, required=True)
    serve.add_argument("--client-id", required=True)
    serve.add_argument("--client-secret", required=True)
    serve.add_argument("--public-url", help="base of `next` links (default: http://HOST:PORT)")
    args = parser.parse_args(argv)
    app = create_app(
        args.database_url,
        account_id=args.account_id,
        client_id=args.client_id,
        client_secret=args.client_secret,
        public_url=args.public_url or f"http://{args.host}:{args.port}",
    )
    uvicorn.run(
        app, host=args.host, port=args.port, http="httptools", workers=1, log_level="warning"
    )


if __name__ == "__main__":
    main()
