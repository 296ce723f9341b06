"""The seeds' query script, as their users write it: SQL text as the Ticket of a `do_get`,
`read_all()` for the answer.

As a script: `seed_query.py URI TABLE ROWS SECONDS` counts TABLE's rows over and over (a table
not made yet counts 0) and prints each count on a line of its own, until the count reaches ROWS
or SECONDS have passed. test_seed_workflow.py imports it and runs it as a process.
"""

import sys
import time

import pyarrow as pa
import pyarrow.flight as flight


def query(client, sql):
    """Runs SQL on the server; the whole result as a pyarrow Table."""
    return client.do_get(flight.Ticket(sql.encode("utf-8"))).read_all()


def count_rows(client, name):
    """count(*) of the table; 0 while it does not exist (the server answers NOT_FOUND, which
    pyarrow raises as pyarrow.lib.ArrowKeyError, a KeyError)."""
    try:
        return query(client, f'SELECT count(*) AS n FROM "{name}"').column("n")[0].as_py()
    except KeyError:
        return 0


def main(argv):
    uri, name, rows, seconds = argv[1], argv[2], int(argv[3]), float(argv[4])
    client = flight.FlightClient(uri)
    deadline = time.monotonic() + seconds
    while True:
        n = count_rows(client, name)
        print(n, flush=True)
        if n >= rows or time.monotonic() > deadline:
            break
    client.close()


if __name__ == "__main__":
    main(sys.argv)
