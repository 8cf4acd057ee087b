"""The Kafka messages chronik-perf speaks, described once; both codec directions are driven by this table.

Transcribed from the facts in Apache Kafka 4.4's message definitions (clients/src/main/resources/common/message/*.json,
also inside the kafka-clients jar): every version it defines for these APIs.
One message per unindented line, ``Name api_key kind versions flexible=<range>``, then one field per line, indented
by nesting depth::

    snake_case_name type [versions] [null=<range>] [tag=<n>] [tagged=<range>] [default=<value>]

``type`` is a primitive (bool int8 int16 uint16 int32 uint32 int64 float64 uuid string bytes records), ``[]<primitive>``
for a primitive array, ``[]`` for an array of the struct described by the indented lines below, or ``{}`` for a
single nested struct. Ranges are ``N``, ``N-M``, ``N+`` or ``none``; a field without versions exists in ``0+``.
"""
from typing import NamedTuple

SCHEMA = """\
ApiVersions 18 request 0-5 flexible=3+
  client_software_name string 3+
  client_software_version string 3+
  cluster_id string 5+ null=5+ default=null
  node_id int32 5+ default=-1
ApiVersions 18 response 0-5 flexible=3+
  error_code int16
  api_keys []
    api_key int16
    min_version int16
    max_version int16
  throttle_time_ms int32 1+
  supported_features [] 3+ tag=0
    name string 3+
    min_version int16 3+
    max_version int16 3+
  finalized_features_epoch int64 3+ tag=1 default=-1
  finalized_features [] 3+ tag=2
    name string 3+
    max_version_level int16 3+
    min_version_level int16 3+
  zk_migration_ready bool 3+ tag=3 default=false
Metadata 3 request 0-13 flexible=9+
  topics [] null=1+
    topic_id uuid 10+
    name string null=10+
  allow_auto_topic_creation bool 4+ default=true
  include_cluster_authorized_operations bool 8-10
  include_topic_authorized_operations bool 8+
Metadata 3 response 0-13 flexible=9+
  throttle_time_ms int32 3+
  brokers []
    node_id int32
    host string
    port int32
    rack string 1+ null=1+ default=null
  cluster_id string 2+ null=2+ default=null
  controller_id int32 1+ default=-1
  topics []
    error_code int16
    name string null=12+
    topic_id uuid 10+
    is_internal bool 1+ default=false
    partitions []
      error_code int16
      partition_index int32
      leader_id int32
      leader_epoch int32 7+ default=-1
      replica_nodes []int32
      isr_nodes []int32
      offline_replicas []int32 5+
    topic_authorized_operations int32 8+ default=-2147483648
  cluster_authorized_operations int32 8-10 default=-2147483648
  error_code int16 13+
Produce 0 request 3-13 flexible=9+
  transactional_id string 3+ null=3+ default=null
  acks int16
  timeout_ms int32
  topic_data []
    name string 0-12
    topic_id uuid 13+
    partition_data []
      index int32
      records records null=0+
Produce 0 response 3-13 flexible=9+
  responses []
    name string 0-12
    topic_id uuid 13+
    partition_responses []
      index int32
      error_code int16
      base_offset int64
      log_append_time_ms int64 2+ default=-1
      log_start_offset int64 5+ default=-1
      record_errors [] 8+
        batch_index int32 8+
        batch_index_error_message string 8+ null=8+ default=null
      error_message string 8+ null=8+ default=null
      current_leader {} 10+ tag=0
        leader_id int32 10+ default=-1
        leader_epoch int32 10+ default=-1
  throttle_time_ms int32 1+ default=0
  node_endpoints [] 10+ tag=0
    node_id int32 10+
    host string 10+
    port int32 10+
    rack string 10+ null=10+ default=null
Fetch 1 request 4-18 flexible=12+
  cluster_id string 12+ null=12+ tag=0 default=null
  replica_id int32 0-14 default=-1
  replica_state {} 15+ tag=1
    replica_id int32 15+ default=-1
    replica_epoch int64 15+ default=-1
  max_wait_ms int32
  min_bytes int32
  max_bytes int32 3+ default=0x7fffffff
  isolation_level int8 4+ default=0
  session_id int32 7+ default=0
  session_epoch int32 7+ default=-1
  topics []
    topic string 0-12
    topic_id uuid 13+
    partitions []
      partition int32
      current_leader_epoch int32 9+ default=-1
      fetch_offset int64
      last_fetched_epoch int32 12+ default=-1
      log_start_offset int64 5+ default=-1
      partition_max_bytes int32
      replica_directory_id uuid 17+ tag=0
      high_watermark int64 18+ tag=1 default=9223372036854775807
  forgotten_topics_data [] 7+
    topic string 7-12
    topic_id uuid 13+
    partitions []int32 7+
  rack_id string 11+ default=""
Fetch 1 response 4-18 flexible=12+
  throttle_time_ms int32 1+
  error_code int16 7+
  session_id int32 7+ default=0
  responses []
    topic string 0-12
    topic_id uuid 13+
    partitions []
      partition_index int32
      error_code int16
      high_watermark int64
      last_stable_offset int64 4+ default=-1
      log_start_offset int64 5+ default=-1
      diverging_epoch {} 12+ tag=0
        epoch int32 12+ default=-1
        end_offset int64 12+ default=-1
      current_leader {} 12+ tag=1
        leader_id int32 12+ default=-1
        leader_epoch int32 12+ default=-1
      snapshot_id {} 12+ tag=2
        end_offset int64 default=-1
        epoch int32 default=-1
      aborted_transactions [] 4+ null=4+
        producer_id int64 4+
        first_offset int64 4+
      preferred_read_replica int32 11+ default=-1
      records records null=0+
  node_endpoints [] 16+ tag=0
    node_id int32 16+
    host string 16+
    port int32 16+
    rack string 16+ null=16+ default=null
ListOffsets 2 request 1-11 flexible=6+
  replica_id int32
  isolation_level int8 2+
  topics []
    name string
    partitions []
      partition_index int32
      current_leader_epoch int32 4+ default=-1
      timestamp int64
  timeout_ms int32 10+
ListOffsets 2 response 1-11 flexible=6+
  throttle_time_ms int32 2+
  topics []
    name string
    partitions []
      partition_index int32
      error_code int16
      timestamp int64 1+ default=-1
      offset int64 1+ default=-1
      leader_epoch int32 4+ default=-1
FindCoordinator 10 request 0-6 flexible=3+
  key string 0-3
  key_type int8 1+ default=0
  coordinator_keys []string 4+
FindCoordinator 10 response 0-6 flexible=3+
  throttle_time_ms int32 1+
  error_code int16 0-3
  error_message string 1-3 null=1-3
  node_id int32 0-3
  host string 0-3
  port int32 0-3
  coordinators [] 4+
    key string 4+
    node_id int32 4+
    host string 4+
    port int32 4+
    error_code int16 4+
    error_message string 4+ null=4+
JoinGroup 11 request 0-9 flexible=6+
  group_id string
  session_timeout_ms int32
  rebalance_timeout_ms int32 1+ default=-1
  member_id string
  group_instance_id string 5+ null=5+ default=null
  protocol_type string
  protocols []
    name string
    metadata bytes
  reason string 8+ null=8+ default=null
JoinGroup 11 response 0-9 flexible=6+
  throttle_time_ms int32 2+
  error_code int16
  generation_id int32 default=-1
  protocol_type string 7+ null=7+ default=null
  protocol_name string null=7+
  leader string
  skip_assignment bool 9+ default=false
  member_id string
  members []
    member_id string
    group_instance_id string 5+ null=5+ default=null
    metadata bytes
SyncGroup 14 request 0-5 flexible=4+
  group_id string
  generation_id int32
  member_id string
  group_instance_id string 3+ null=3+ default=null
  protocol_type string 5+ null=5+ default=null
  protocol_name string 5+ null=5+ default=null
  assignments []
    member_id string
    assignment bytes
SyncGroup 14 response 0-5 flexible=4+
  throttle_time_ms int32 1+
  error_code int16
  protocol_type string 5+ null=5+ default=null
  protocol_name string 5+ null=5+ default=null
  assignment bytes
Heartbeat 12 request 0-4 flexible=4+
  group_id string
  generation_id int32
  member_id string
  group_instance_id string 3+ null=3+ default=null
Heartbeat 12 response 0-4 flexible=4+
  throttle_time_ms int32 1+
  error_code int16
LeaveGroup 13 request 0-5 flexible=4+
  group_id string
  member_id string 0-2
  members [] 3+
    member_id string 3+
    group_instance_id string 3+ null=3+ default=null
    reason string 5+ null=5+ default=null
LeaveGroup 13 response 0-5 flexible=4+
  throttle_time_ms int32 1+
  error_code int16
  members [] 3+
    member_id string 3+
    group_instance_id string 3+ null=3+
    error_code int16 3+
OffsetCommit 8 request 2-10 flexible=8+
  group_id string
  generation_id_or_member_epoch int32 1+ default=-1
  member_id string 1+
  group_instance_id string 7+ null=7+ default=null
  retention_time_ms int64 2-4 default=-1
  topics []
    name string 0-9
    topic_id uuid 10+
    partitions []
      partition_index int32
      committed_offset int64
      committed_leader_epoch int32 6+ default=-1
      committed_metadata string null=0+
OffsetCommit 8 response 2-10 flexible=8+
  throttle_time_ms int32 3+
  topics []
    name string 0-9
    topic_id uuid 10+
    partitions []
      partition_index int32
      error_code int16
OffsetFetch 9 request 1-10 flexible=6+
  group_id string 0-7
  topics [] 0-7 null=2-7
    name string 0-7
    partition_indexes []int32 0-7
  groups [] 8+
    group_id string 8+
    member_id string 9+ null=9+ default=null
    member_epoch int32 9+ default=-1
    topics [] 8+ null=8+
      name string 8-9
      topic_id uuid 10+
      partition_indexes []int32 8+
  require_stable bool 7+ default=false
OffsetFetch 9 response 1-10 flexible=6+
  throttle_time_ms int32 3+
  topics [] 0-7
    name string 0-7
    partitions [] 0-7
      partition_index int32 0-7
      committed_offset int64 0-7
      committed_leader_epoch int32 5-7 default=-1
      metadata string 0-7 null=0-7
      error_code int16 0-7
  error_code int16 2-7 default=0
  groups [] 8+
    group_id string 8+
    topics [] 8+
      name string 8-9
      topic_id uuid 10+
      partitions [] 8+
        partition_index int32 8+
        committed_offset int64 8+
        committed_leader_epoch int32 8+ default=-1
        metadata string 8+ null=8+
        error_code int16 8+
    error_code int16 8+ default=0
CreateTopics 19 request 2-7 flexible=5+
  topics []
    name string
    num_partitions int32
    replication_factor int16
    assignments []
      partition_index int32
      broker_ids []int32
    configs []
      name string
      value string null=0+
  timeout_ms int32 default=60000
  validate_only bool 1+ default=false
CreateTopics 19 response 2-7 flexible=5+
  throttle_time_ms int32 2+
  topics []
    name string
    topic_id uuid 7+
    error_code int16
    error_message string 1+ null=0+
    topic_config_error_code int16 5+ tag=0
    num_partitions int32 5+ default=-1
    replication_factor int16 5+ default=-1
    configs [] 5+ null=5+
      name string 5+
      value string 5+ null=5+
      read_only bool 5+
      config_source int8 5+ default=-1
      is_sensitive bool 5+
DeleteTopics 20 request 1-6 flexible=4+
  topics [] 6+
    name string 6+ null=6+ default=null
    topic_id uuid 6+
  topic_names []string 0-5
  timeout_ms int32
DeleteTopics 20 response 1-6 flexible=4+
  throttle_time_ms int32 1+
  responses []
    name string null=6+
    topic_id uuid 6+
    error_code int16
    error_message string 5+ null=5+ default=null
InitProducerId 22 request 0-6 flexible=2+
  transactional_id string null=0+
  transaction_timeout_ms int32
  producer_id int64 3+ default=-1
  producer_epoch int16 3+ default=-1
  enable2_pc bool 6+ default=false
  keep_prepared_txn bool 6+ default=false
InitProducerId 22 response 0-6 flexible=2+
  throttle_time_ms int32
  error_code int16
  producer_id int64 default=-1
  producer_epoch int16
  ongoing_txn_producer_id int64 6+ default=-1
  ongoing_txn_producer_epoch int16 6+ default=-1
DescribeGroups 15 request 0-6 flexible=5+
  groups []string
  include_authorized_operations bool 3+
DescribeGroups 15 response 0-6 flexible=5+
  throttle_time_ms int32 1+
  groups []
    error_code int16
    error_message string 6+ null=6+ default=null
    group_id string
    group_state string
    protocol_type string
    protocol_data string
    members []
      member_id string
      group_instance_id string 4+ null=4+ default=null
      client_id string
      client_host string
      member_metadata bytes
      member_assignment bytes
    authorized_operations int32 3+ default=-2147483648
ListGroups 16 request 0-5 flexible=3+
  states_filter []string 4+
  types_filter []string 5+
ListGroups 16 response 0-5 flexible=3+
  throttle_time_ms int32 1+
  error_code int16
  groups []
    group_id string
    protocol_type string
    group_state string 4+
    group_type string 5+
ConsumerGroupHeartbeat 68 request 0-1 flexible=0+
  group_id string
  member_id string
  member_epoch int32
  instance_id string null=0+ default=null
  rack_id string null=0+ default=null
  rebalance_timeout_ms int32 default=-1
  subscribed_topic_names []string null=0+ default=null
  subscribed_topic_regex string 1+ null=1+ default=null
  server_assignor string null=0+ default=null
  topic_partitions [] null=0+ default=null
    topic_id uuid
    partitions []int32
ConsumerGroupHeartbeat 68 response 0-1 flexible=0+
  throttle_time_ms int32
  error_code int16
  error_message string null=0+ default=null
  member_id string null=0+ default=null
  member_epoch int32
  heartbeat_interval_ms int32
  assignment {} null=0+ default=null
    topic_partitions []
      topic_id uuid
      partitions []int32
ConsumerProtocolSubscription - data 0-3 flexible=none
  topics []string
  user_data bytes null=0+ default=null
  owned_partitions [] 1+
    topic string 1+
    partitions []int32 1+
  generation_id int32 2+ default=-1
  rack_id string 3+ null=3+ default=null
ConsumerProtocolAssignment - data 0-3 flexible=none
  assigned_partitions []
    topic string
    partitions []int32
  user_data bytes null=0+ default=null
"""

PRIMITIVES = frozenset(
    "bool int8 int16 uint16 int32 uint32 int64 float64 uuid string bytes records".split())


class Field(NamedTuple):
    name: str
    type: str              # a primitive, "[]" + primitive, "[]" (struct array) or "{}" (struct)
    versions: tuple        # (lo, hi) inclusive; hi is None for open-ended
    nullable: tuple        # (lo, hi) or None
    tag: int               # -1 when never tagged
    tagged: tuple          # versions in which the field is tagged, or None
    default: str           # Kafka's default text, or None for the type's zero
    fields: tuple          # nested fields of a struct or struct array


class Message(NamedTuple):
    name: str
    api_key: int           # -1 for embedded payloads (kind "data")
    kind: str              # "request", "response" or "data"
    versions: tuple
    flexible: tuple        # or None
    fields: tuple


def parse_range(text):
    """Parse ``N``, ``N-M``, ``N+`` or ``none`` into (lo, hi) with hi None for open-ended, or None."""
    if text == "none":
        return None
    if text.endswith("+"):
        return int(text[:-1]), None
    lo, _, hi = text.partition("-")
    return int(lo), int(hi or lo)


def in_range(rng, version):
    """True when version lies in the parsed range rng."""
    return rng is not None and rng[0] <= version and (rng[1] is None or version <= rng[1])


def _parse_field(line):
    name, ftype, *opts = line.split()
    versions, nullable, tag, tagged, default = (0, None), None, -1, None, None
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq:
            versions = parse_range(opt)
        elif key == "null":
            nullable = parse_range(value)
        elif key == "tag":
            tag = int(value)
        elif key == "tagged":
            tagged = parse_range(value)
        elif key == "default":
            default = "" if value == '""' else value
        else:
            raise ValueError(f"unknown option {opt!r} in schema line {line!r}")
    if tag >= 0 and tagged is None:
        tagged = versions
    return name, ftype, versions, nullable, tag, tagged, default


def _parse_block(lines, start, depth):
    fields = []
    i = start
    while i < len(lines):
        indent = (len(lines[i]) - len(lines[i].lstrip(" "))) // 2
        if indent < depth:
            break
        if indent > depth:
            raise ValueError(f"bad indentation in schema line {lines[i]!r}")
        head = _parse_field(lines[i].strip())
        sub, i = _parse_block(lines, i + 1, depth + 1)
        if (head[1] in ("[]", "{}")) != bool(sub):
            raise ValueError(f"struct fields must follow exactly the struct types: {lines[i - 1]!r}")
        fields.append(Field(*head, tuple(sub)))
    return fields, i


def parse_schema(text=SCHEMA):
    """Parse the schema text into ``{(name, kind): Message}``."""
    lines = [line for line in text.splitlines() if line.strip()]
    messages = {}
    i = 0
    while i < len(lines):
        name, key, kind, versions, flexible = lines[i].split()
        fields, i = _parse_block(lines, i + 1, 1)
        messages[name, kind] = Message(name, -1 if key == "-" else int(key), kind, parse_range(versions),
                                       parse_range(flexible.partition("=")[2]), tuple(fields))
    return messages
