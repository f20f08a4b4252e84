"""Load a Phonewagon account's companies, campaigns and calls with dlt's `rest_api` source.

No Phonewagon library is needed: the API is plain HTTP Basic auth and a JSON `next` link, which
dlt's declarative REST source follows by itself. Docs: docs/integrations/dlt.md.

    pip install "dlt[duckdb]"
    export PHONEWAGON_CLIENT_ID=pwid_... PHONEWAGON_CLIENT_SECRET=pwsk_...
    python examples/dlt_phonewagon.py     # -> phonewagon.duckdb, tables phonewagon_data.calls, ...

Every resource merges on `id`, so running the pipeline again updates calls whose status,
duration or recording changed since and never duplicates one.
"""

from __future__ import annotations

import os
from typing import Any

import dlt
from dlt.sources.rest_api import rest_api_source

DEFAULT_BASE_URL = (
    "https://dev.phonewagon.com"  # the documented API; the demo: http://127.0.0.1:8000
)


def phonewagon_source(
    base_url: str, client_id: str, client_secret: str, *, page_size: int = 1000
) -> Any:
    """A dlt source with the resources `companies`, `campaigns` and `calls` of one account.

    `page_size` is the API's maximum: at 50 requests a minute that is 50,000 calls a minute.
    dlt's HTTP client waits out a `429` by its `Retry-After` on its own.
    """
    config: Any = {
        "client": {
            "base_url": base_url.rstrip("/") + "/",
            "auth": {"type": "http_basic", "username": client_id, "password": client_secret},
            # `next` is an absolute URL that keeps the filters and page size; it is absent on the
            # last page. dlt drops the first request's params when following it.
            "paginator": {"type": "json_link", "next_url_path": "next"},
        },
        "resource_defaults": {"primary_key": "id", "write_disposition": "merge"},
        "resources": [
            {
                "name": "companies",
                "endpoint": {"path": "companies", "data_selector": "companies"},
            },
            {
                "name": "campaigns",
                "endpoint": {"path": "campaigns", "data_selector": "campaigns"},
            },
            {
                "name": "calls",
                "endpoint": {
                    "path": "calls",
                    "params": {"page_size": page_size},
                    "data_selector": "calls",
                },
            },
        ],
    }
    return rest_api_source(config, name="phonewagon")


if __name__ == "__main__":
    pipeline = dlt.pipeline(
        pipeline_name="phonewagon",
        destination=dlt.destinations.duckdb("phonewagon.duckdb"),
        # Not "phonewagon": DuckDB could not tell the dataset from the file's catalog of that name.
        dataset_name="phonewagon_data",
    )
    source = phonewagon_source(
        os.environ.get("PHONEWAGON_BASE_URL", DEFAULT_BASE_URL),
        os.environ["PHONEWAGON_CLIENT_ID"],
        os.environ["PHONEWAGON_CLIENT_SECRET"],
    )
    # JSON Lines: DuckDB loads 40,000 calls from it in ~1 s; dlt's default SQL INSERTs take ~30 s.
    print(pipeline.run(source, loader_file_format="jsonl"))
