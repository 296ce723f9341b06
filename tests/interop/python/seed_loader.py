"""The seeds' loader, as their users write it: pyarrow Tables of 1,000 rows (batch_id int64,
timestamp ISO string, value float64, category string), one `do_put` per table.

As a script: `seed_loader.py URI TABLE FIRST_BATCH PUTS` puts batches FIRST_BATCH ..
FIRST_BATCH+PUTS-1 into TABLE and prints the acknowledgement of each (the PutResult's
app_metadata, JSON) on a line of its own. test_seed_workflow.py imports it and runs it as a process.
"""

import datetime
import json
import sys

import pyarrow as pa
import pyarrow.flight as flight

ROWS = 1000
CATEGORIES = ["alpha", "beta", "gamma", "delta"]
START = datetime.datetime(2024, 1, 1)


def seed_value(batch_id, i):
    """Halves and small integers: every sum of them is exact in float64, in any order."""
    return batch_id + (i % 100) * 0.5


def seed_table(batch_id, rows=ROWS):
    """One loader batch: `rows` rows sharing batch_id, timestamps one second apart."""
    first = START + datetime.timedelta(hours=batch_id)
    return pa.table({
        "batch_id": pa.array([batch_id] * rows, pa.int64()),
        "timestamp": [(first + datetime.timedelta(seconds=i)).isoformat() for i in range(rows)],
        "value": pa.array([seed_value(batch_id, i) for i in range(rows)], pa.float64()),
        "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(rows)],
    })


def put_table(client, name, table):
    """do_put of one table; returns the server's acknowledgement (PutResult app_metadata) as a dict."""
    writer, reader = client.do_put(flight.FlightDescriptor.for_path(name), table.schema)
    writer.write_table(table)
    writer.done_writing()
    ack = reader.read()
    writer.close()
    return json.loads(ack.to_pybytes())


def main(argv):
    uri, name, first, puts = argv[1], argv[2], int(argv[3]), int(argv[4])
    client = flight.FlightClient(uri)
    for batch_id in range(first, first + puts):
        print(json.dumps({"batch_id": batch_id, "ack": put_table(client, name, seed_table(batch_id))}),
              flush=True)
    client.close()


if __name__ == "__main__":
    main(sys.argv)
