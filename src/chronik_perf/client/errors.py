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

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.__doc__ is None:
            cls.__doc__ = f"Kafka error code {cls.code}."

    def __init__(self, message="", code=None):
        if code is not None:
            self.code = code
        super().__init__(f"{type(self).__name__} (error code {self.code}){': ' + message if message else ''}")


# One class per error code a producer, consumer, group member or admin meets: (code, retriable) as in Kafka's
# Errors table. Compare codes through them (UnknownMemberIdError.code), never as bare numbers.

class UnknownServerError(BrokerError): code, retriable = -1, False
class OffsetOutOfRangeError(BrokerError): code, retriable = 1, False
class CorruptMessageError(BrokerError): code, retriable = 2, True
class UnknownTopicOrPartitionError(BrokerError): code, retriable = 3, True
class InvalidFetchSizeError(BrokerError): code, retriable = 4, False
class LeaderNotAvailableError(BrokerError): code, retriable = 5, True
class NotLeaderOrFollowerError(BrokerError): code, retriable = 6, True
class BrokerRequestTimedOutError(BrokerError): code, retriable = 7, True
class BrokerNotAvailableError(BrokerError): code, retriable = 8, False
class ReplicaNotAvailableError(BrokerError): code, retriable = 9, True
class MessageTooLargeError(BrokerError): code, retriable = 10, False
class NetworkExceptionError(BrokerError): code, retriable = 13, True
class CoordinatorLoadInProgressError(BrokerError): code, retriable = 14, True
class CoordinatorNotAvailableError(BrokerError): code, retriable = 15, True
class NotCoordinatorError(BrokerError): code, retriable = 16, True
class InvalidTopicError(BrokerError): code, retriable = 17, False
class RecordListTooLargeError(BrokerError): code, retriable = 18, False
class NotEnoughReplicasError(BrokerError): code, retriable = 19, True
class NotEnoughReplicasAfterAppendError(BrokerError): code, retriable = 20, True
class InvalidRequiredAcksError(BrokerError): code, retriable = 21, False
class IllegalGenerationError(BrokerError): code, retriable = 22, False
class InconsistentGroupProtocolError(BrokerError): code, retriable = 23, False
class InvalidGroupIdError(BrokerError): code, retriable = 24, False
class UnknownMemberIdError(BrokerError): code, retriable = 25, False
class InvalidSessionTimeoutError(BrokerError): code, retriable = 26, False
class RebalanceInProgressError(BrokerError): code, retriable = 27, False
class InvalidCommitOffsetSizeError(BrokerError): code, retriable = 28, False
class TopicAuthorizationFailedError(BrokerError): code, retriable = 29, False
class GroupAuthorizationFailedError(BrokerError): code, retriable = 30, False
class UnsupportedVersionError(BrokerError): code, retriable = 35, False
class TopicAlreadyExistsError(BrokerError): code, retriable = 36, False
class InvalidPartitionsError(BrokerError): code, retriable = 37, False
class InvalidReplicationFactorError(BrokerError): code, retriable = 38, False
class NotControllerError(BrokerError): code, retriable = 41, True
class InvalidRequestError(BrokerError): code, retriable = 42, False
class UnsupportedForMessageFormatError(BrokerError): code, retriable = 43, False
class OutOfOrderSequenceNumberError(BrokerError): code, retriable = 45, False
class DuplicateSequenceNumberError(BrokerError): code, retriable = 46, False
class InvalidProducerEpochError(BrokerError): code, retriable = 47, False
class InvalidProducerIdMappingError(BrokerError): code, retriable = 49, False
class ConcurrentTransactionsError(BrokerError): code, retriable = 51, True
class KafkaStorageError(BrokerError): code, retriable = 56, True
class ReassignmentInProgressError(BrokerError): code, retriable = 60, False
class FetchSessionIdNotFoundError(BrokerError): code, retriable = 70, True
class InvalidFetchSessionEpochError(BrokerError): code, retriable = 71, True
class ListenerNotFoundError(BrokerError): code, retriable = 72, True
class FencedLeaderEpochError(BrokerError): code, retriable = 74, True
class UnknownLeaderEpochError(BrokerError): code, retriable = 75, True
class UnsupportedCompressionTypeError(BrokerError): code, retriable = 76, False
class OffsetNotAvailableError(BrokerError): code, retriable = 78, True
class MemberIdRequiredError(BrokerError): code, retriable = 79, False
class GroupMaxSizeReachedError(BrokerError): code, retriable = 81, False
class FencedInstanceIdError(BrokerError): code, retriable = 82, False
class ThrottlingQuotaExceededError(BrokerError): code, retriable = 89, True
class UnknownTopicIdError(BrokerError): code, retriable = 100, True
class FencedMemberEpochError(BrokerError): code, retriable = 110, False
class UnreleasedInstanceIdError(BrokerError): code, retriable = 111, False
class UnsupportedAssignorError(BrokerError): code, retriable = 112, False
class StaleMemberEpochError(BrokerError): code, retriable = 113, False


ERRORS = {cls.code: cls for cls in BrokerError.__subclasses__()}
"""Error code -> exception class."""


def error_for(code, message=""):
    """The named exception (an instance) for a broker error code; BrokerError for codes not in the table."""
    cls = ERRORS.get(code)
    return cls(message) if cls is not None else BrokerError(message, code)


def check(code, message=""):
    """Raise the named exception for a non-zero error code."""
    if code:
        raise error_for(code, message)
