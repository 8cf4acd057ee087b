"""A Kafka client on chronik-perf's own core (no librdkafka): the e2e suite's ``--driver native``.

- ``Cluster``: connections per broker (ApiVersions negotiation, pipelined requests, reader thread each),
  metadata, leader routing, retries, reconnects with backoff; CreateTopics/DeleteTopics, ListOffsets.
- ``Producer``: ``produce_many(topic, values, keys=None, partition=None)`` builds record batches v2 in the core,
  every codec, acks 0/1/all, optional idempotence; ``send()`` with linger/batch size. Returns ``Delivery`` counts.
- ``Consumer``: Fetch with fetch sessions, one request in flight per leader, ``FetchedPartition`` numpy columns.
- ``GroupConsumer``: classic consumer groups (range / roundrobin assignors), rebalance times.
- ``KIP848GroupConsumer``: the KIP-848 consumer group protocol (ConsumerGroupHeartbeat, broker-side assignment).
- ``errors``: one named exception per Kafka error code.
"""
from . import errors
from .cluster import Cluster, TopicInfo
from .consumer import Consumer, FetchedPartition
from .errors import BrokerError, BrokerUnavailableError, ConnectionLostError, KafkaClientError, RequestTimedOutError
from .group import GroupConsumer, range_assign, roundrobin_assign
from .group_kip848 import KIP848GroupConsumer
from .producer import Delivery, Producer

__all__ = ["BrokerError", "BrokerUnavailableError", "Cluster", "ConnectionLostError", "Consumer", "Delivery",
           "FetchedPartition", "GroupConsumer", "KIP848GroupConsumer", "KafkaClientError", "Producer",
           "RequestTimedOutError", "TopicInfo", "errors", "range_assign", "roundrobin_assign"]
