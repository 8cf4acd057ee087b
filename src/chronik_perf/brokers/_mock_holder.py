"""Holds a librdkafka mock cluster open in a background process until SIGTERM.

Run as a plain script (it imports only confluent_kafka): `python _mock_holder.py NUM_BROKERS BOOTSTRAP_FILE`.
It writes the cluster's bootstrap address to BOOTSTRAP_FILE once the mock brokers listen.
"""
import os
import signal
import sys


def main() -> None:
    from confluent_kafka import Producer

    num_brokers, bootstrap_file = int(sys.argv[1]), sys.argv[2]
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    holder = Producer({"test.mock.num.brokers": num_brokers})
    brokers = holder.list_topics(timeout=10).brokers.values()
    tmp = bootstrap_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(",".join(f"{b.host}:{b.port}" for b in brokers))
    os.replace(tmp, bootstrap_file)
    while not stopping:
        holder.poll(0.5)


if __name__ == "__main__":
    main()
