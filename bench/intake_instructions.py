"""Instructions per intake request, counted by callgrind: a figure that does not move with the host's load.

    python bench/intake_instructions.py --setup             # migrate, seed one session (outside callgrind)
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/intake_instructions.py --requests 0
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python bench/intake_instructions.py --requests 200

The difference of the two totals ("Collected : N" on stderr), divided by 200, is what one frame request costs
inside Django (middleware, authentication, the view, intake: checks, consent guard, frame row, frame store,
dispatch to the broker), without HTTP parsing. Same database and Redis as bench/pipeline_bench.py
(VISAGE_BENCH_DB, VISAGE_BENCH_REDIS), so run it from each tree with its own database to compare two commits.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pipeline_bench  # noqa: E402  (sets the environment: its database, Redis, production-like settings)

STATE = Path(pipeline_bench.ROOT) / "var" / "intake_instructions.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--setup", action="store_true")
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    if args.setup:
        pipeline_bench.ensure_database()
        pipeline_bench.reset_pipeline_tables()
        (session_id, token), = pipeline_bench.make_sessions(1)
        STATE.parent.mkdir(exist_ok=True)
        STATE.write_text(json.dumps({"session": session_id, "token": token}))
        return
    import django

    django.setup()
    from django.test import Client

    state = json.loads(STATE.read_text())
    jpeg = pipeline_bench.test_jpeg()  # the 640x480 frame the throughput bench posts
    client = Client(HTTP_HOST="127.0.0.1")
    url = f"/api/v1/capture-sessions/{state['session']}/frames/"
    headers = {"HTTP_AUTHORIZATION": f"Bearer {state['token']}"}
    # One request outside the count either way: first-use imports and caches are not per request.
    assert client.post(url, jpeg, content_type="image/jpeg", **headers).status_code == 202
    for _ in range(args.requests):
        response = client.post(url, jpeg, content_type="image/jpeg", **headers)
        assert response.status_code == 202, response.content
    print(f"{args.requests} requests accepted")


if __name__ == "__main__":
    main()
