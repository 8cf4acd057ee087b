"""Named exceptions for the client: one class per Kafka error code, plus connection and timeout errors.

``error_for(code, context)`` returns an instance of the class for a broker error code (``UnknownServerError``
subclass ``BrokerError`` with the code for codes we do not name); ``.retriable`` says whether a retry after a
metadata refresh can succeed, as in Kafka's ``Errors`` table.
"""


class KafkaClientError(Exception):
    """Base of every error the client raises."""

    retriable = False


class BrokerUnavailableError(KafkaClientError):
    """No connection to a broker could be made: reconnecting with backoff until the deadline already failed."""


class ConnectionLostError(BrokerUnavailableError):
    """The broker closed the connection (or it broke) while requests were in flight; a reconnect may succeed."""

    retriable = True


class RequestTimedOutError(KafkaClientError):
    """A request got no answer within its timeout; its connection is closed."""

    retriable = True


class BrokerError(KafkaClientError):
    """A broker answered with a non-zero error code."""

    code = -1

    def __init__(self, message="", code=None):
        if code is not None:
            self.code = code
        super().__init__(f"{type(self).__name__} (error code {self.code}){': ' + message if message else ''}")


# (code, name, retriable) — the error codes a producer, consumer, group member or admin meets.
_CODES = (
    (-1, "UnknownServerError", False), (1, "OffsetOutOfRangeError", False), (2, "CorruptMessageError", True),
    (3, "UnknownTopicOrPartitionError", True), (4, "InvalidFetchSizeError", False),
    (5, "LeaderNotAvailableError", True), (6, "NotLeaderOrFollowerError", True),
    (7, "BrokerRequestTimedOutError", True), (8, "BrokerNotAvailableError", False),
    (9, "ReplicaNotAvailableError", True), (10, "MessageTooLargeError", False),
    (13, "NetworkExceptionError", True), (14, "CoordinatorLoadInProgressError", True),
    (15, "CoordinatorNotAvailableError", True), (16, "NotCoordinatorError", True),
    (17, "InvalidTopicError", False), (18, "RecordListTooLargeError", False),
    (19, "NotEnoughReplicasError", True), (20, "NotEnoughReplicasAfterAppendError", True),
    (21, "InvalidRequiredAcksError", False), (22, "IllegalGenerationError", False),
    (23, "InconsistentGroupProtocolError", False), (24, "InvalidGroupIdError", False),
    (25, "UnknownMemberIdError", False), (26, "InvalidSessionTimeoutError", False),
    (27, "RebalanceInProgressError", False), (28, "InvalidCommitOffsetSizeError", False),
    (29, "TopicAuthorizationFailedError", False), (30, "GroupAuthorizationFailedError", False),
    (35, "UnsupportedVersionError", False), (36, "TopicAlreadyExistsError", False),
    (37, "InvalidPartitionsError", False), (38, "InvalidReplicationFactorError", False),
    (41, "NotControllerError", True), (42, "InvalidRequestError", False),
    (43, "UnsupportedForMessageFormatError", False), (45, "OutOfOrderSequenceNumberError", False),
    (46, "DuplicateSequenceNumberError", False), (47, "InvalidProducerEpochError", False),
    (49, "InvalidProducerIdMappingError", False), (51, "ConcurrentTransactionsError", True),
    (56, "KafkaStorageError", True), (60, "ReassignmentInProgressError", False),
    (70, "FetchSessionIdNotFoundError", True), (71, "InvalidFetchSessionEpochError", True),
    (72, "ListenerNotFoundError", True), (74, "FencedLeaderEpochError", True),
    (75, "UnknownLeaderEpochError", True), (76, "UnsupportedCompressionTypeError", False),
    (78, "OffsetNotAvailableError", True), (79, "MemberIdRequiredError", False),
    (81, "GroupMaxSizeReachedError", False), (82, "FencedInstanceIdError", False),
    (89, "ThrottlingQuotaExceededError", True), (100, "UnknownTopicIdError", True),
    (110, "FencedMemberEpochError", False), (111, "UnreleasedInstanceIdError", False),
    (112, "UnsupportedAssignorError", False), (113, "StaleMemberEpochError", False),
)

ERRORS = {}
"""Error code -> exception class."""
for _code, _name, _retriable in _CODES:
    ERRORS[_code] = globals()[_name] = type(_name, (BrokerError,), {"code": _code, "retriable": _retriable,
                                                                     "__doc__": f"Kafka error code {_code}."})
del _code, _name, _retriable


def error_for(code, message=""):
    """The named exception (an instance) for a broker error code; BrokerError for codes not in the table."""
    cls = ERRORS.get(code)
    return cls(message) if cls is not None else BrokerError(message, code)


def check(code, message=""):
    """Raise the named exception for a non-zero error code."""
    if code:
        raise error_for(code, message)
