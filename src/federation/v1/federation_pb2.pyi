from memnode.v1 import memnode_pb2 as _memnode_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class EventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EVENT_KIND_UNSPECIFIED: _ClassVar[EventKind]
    PUT: _ClassVar[EventKind]
    UPDATE: _ClassVar[EventKind]
    FORGET: _ClassVar[EventKind]
EVENT_KIND_UNSPECIFIED: EventKind
PUT: EventKind
UPDATE: EventKind
FORGET: EventKind

class Event(_message.Message):
    __slots__ = ("origin", "seq", "kind", "local_id", "timestamp_ms", "privacy", "model", "embedding", "metadata", "public_key", "signature")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _memnode_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_memnode_pb2.Value, _Mapping]] = ...) -> None: ...
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    LOCAL_ID_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_MS_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    origin: str
    seq: int
    kind: EventKind
    local_id: str
    timestamp_ms: int
    privacy: _memnode_pb2.Privacy
    model: _memnode_pb2.ModelIdentity
    embedding: bytes
    metadata: _containers.MessageMap[str, _memnode_pb2.Value]
    public_key: bytes
    signature: bytes
    def __init__(self, origin: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[_Union[EventKind, str]] = ..., local_id: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., privacy: _Optional[_Union[_memnode_pb2.Privacy, str]] = ..., model: _Optional[_Union[_memnode_pb2.ModelIdentity, _Mapping]] = ..., embedding: _Optional[bytes] = ..., metadata: _Optional[_Mapping[str, _memnode_pb2.Value]] = ..., public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

class EventRun(_message.Message):
    __slots__ = ("origin", "after_seq", "through_seq", "events")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    THROUGH_SEQ_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    origin: str
    after_seq: int
    through_seq: int
    events: _containers.RepeatedCompositeFieldContainer[Event]
    def __init__(self, origin: _Optional[str] = ..., after_seq: _Optional[int] = ..., through_seq: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ...) -> None: ...

class EventBatch(_message.Message):
    __slots__ = ("sender", "runs")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    sender: str
    runs: _containers.RepeatedCompositeFieldContainer[EventRun]
    def __init__(self, sender: _Optional[str] = ..., runs: _Optional[_Iterable[_Union[EventRun, _Mapping]]] = ...) -> None: ...

class ApplyResult(_message.Message):
    __slots__ = ("applied", "duplicates", "buffered", "rejected")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    BUFFERED_FIELD_NUMBER: _ClassVar[int]
    REJECTED_FIELD_NUMBER: _ClassVar[int]
    applied: int
    duplicates: int
    buffered: int
    rejected: int
    def __init__(self, applied: _Optional[int] = ..., duplicates: _Optional[int] = ..., buffered: _Optional[int] = ..., rejected: _Optional[int] = ...) -> None: ...
