from federation.v1 import types_pb2 as _types_pb2
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

class SharedPrivacy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHARED_PRIVACY_UNSPECIFIED: _ClassVar[SharedPrivacy]
    TEAM: _ClassVar[SharedPrivacy]
    PUBLIC: _ClassVar[SharedPrivacy]
EVENT_KIND_UNSPECIFIED: EventKind
PUT: EventKind
UPDATE: EventKind
FORGET: EventKind
SHARED_PRIVACY_UNSPECIFIED: SharedPrivacy
TEAM: SharedPrivacy
PUBLIC: SharedPrivacy

class Event(_message.Message):
    __slots__ = ("origin", "seq", "kind", "local_id", "timestamp_ms", "privacy", "model", "embedding", "metadata", "public_key", "signature")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
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
    privacy: SharedPrivacy
    model: _types_pb2.ModelIdentity
    embedding: bytes
    metadata: _containers.MessageMap[str, _types_pb2.Value]
    public_key: bytes
    signature: bytes
    def __init__(self, origin: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[_Union[EventKind, str]] = ..., local_id: _Optional[str] = ..., timestamp_ms: _Optional[int] = ..., privacy: _Optional[_Union[SharedPrivacy, str]] = ..., model: _Optional[_Union[_types_pb2.ModelIdentity, _Mapping]] = ..., embedding: _Optional[bytes] = ..., metadata: _Optional[_Mapping[str, _types_pb2.Value]] = ..., public_key: _Optional[bytes] = ..., signature: _Optional[bytes] = ...) -> None: ...

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
    __slots__ = ("sender", "runs", "rumor_hops", "watermarks", "gc_floors", "rumor_seen")
    class WatermarksEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class GcFloorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SENDER_FIELD_NUMBER: _ClassVar[int]
    RUNS_FIELD_NUMBER: _ClassVar[int]
    RUMOR_HOPS_FIELD_NUMBER: _ClassVar[int]
    WATERMARKS_FIELD_NUMBER: _ClassVar[int]
    GC_FLOORS_FIELD_NUMBER: _ClassVar[int]
    RUMOR_SEEN_FIELD_NUMBER: _ClassVar[int]
    sender: str
    runs: _containers.RepeatedCompositeFieldContainer[EventRun]
    rumor_hops: int
    watermarks: _containers.ScalarMap[str, int]
    gc_floors: _containers.ScalarMap[str, int]
    rumor_seen: int
    def __init__(self, sender: _Optional[str] = ..., runs: _Optional[_Iterable[_Union[EventRun, _Mapping]]] = ..., rumor_hops: _Optional[int] = ..., watermarks: _Optional[_Mapping[str, int]] = ..., gc_floors: _Optional[_Mapping[str, int]] = ..., rumor_seen: _Optional[int] = ...) -> None: ...

class MemberHeartbeat(_message.Message):
    __slots__ = ("node_id", "incarnation", "heartbeat", "address")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    incarnation: int
    heartbeat: int
    address: str
    def __init__(self, node_id: _Optional[str] = ..., incarnation: _Optional[int] = ..., heartbeat: _Optional[int] = ..., address: _Optional[str] = ...) -> None: ...

class Digest(_message.Message):
    __slots__ = ("sender", "incarnation", "heartbeat", "address", "version_vector", "members", "reply", "gc_floors", "resync", "deny_version", "erasure_version", "delta")
    class VersionVectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class GcFloorsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    class ResyncEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SENDER_FIELD_NUMBER: _ClassVar[int]
    INCARNATION_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    VERSION_VECTOR_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    REPLY_FIELD_NUMBER: _ClassVar[int]
    GC_FLOORS_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FIELD_NUMBER: _ClassVar[int]
    DENY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ERASURE_VERSION_FIELD_NUMBER: _ClassVar[int]
    DELTA_FIELD_NUMBER: _ClassVar[int]
    sender: str
    incarnation: int
    heartbeat: int
    address: str
    version_vector: _containers.ScalarMap[str, int]
    members: _containers.RepeatedCompositeFieldContainer[MemberHeartbeat]
    reply: bool
    gc_floors: _containers.ScalarMap[str, int]
    resync: _containers.ScalarMap[str, int]
    deny_version: int
    erasure_version: int
    delta: bool
    def __init__(self, sender: _Optional[str] = ..., incarnation: _Optional[int] = ..., heartbeat: _Optional[int] = ..., address: _Optional[str] = ..., version_vector: _Optional[_Mapping[str, int]] = ..., members: _Optional[_Iterable[_Union[MemberHeartbeat, _Mapping]]] = ..., reply: _Optional[bool] = ..., gc_floors: _Optional[_Mapping[str, int]] = ..., resync: _Optional[_Mapping[str, int]] = ..., deny_version: _Optional[int] = ..., erasure_version: _Optional[int] = ..., delta: _Optional[bool] = ...) -> None: ...

class SignedDenyList(_message.Message):
    __slots__ = ("sender", "version", "payload")
    SENDER_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    sender: str
    version: int
    payload: bytes
    def __init__(self, sender: _Optional[str] = ..., version: _Optional[int] = ..., payload: _Optional[bytes] = ...) -> None: ...

class GossipMessage(_message.Message):
    __slots__ = ("digest", "batch", "deny_list", "erasures")
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    DENY_LIST_FIELD_NUMBER: _ClassVar[int]
    ERASURES_FIELD_NUMBER: _ClassVar[int]
    digest: Digest
    batch: EventBatch
    deny_list: SignedDenyList
    erasures: SignedDenyList
    def __init__(self, digest: _Optional[_Union[Digest, _Mapping]] = ..., batch: _Optional[_Union[EventBatch, _Mapping]] = ..., deny_list: _Optional[_Union[SignedDenyList, _Mapping]] = ..., erasures: _Optional[_Union[SignedDenyList, _Mapping]] = ...) -> None: ...

class DeliverAck(_message.Message):
    __slots__ = ("received",)
    RECEIVED_FIELD_NUMBER: _ClassVar[int]
    received: int
    def __init__(self, received: _Optional[int] = ...) -> None: ...

class IdentifyRequest(_message.Message):
    __slots__ = ("node_id", "address")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ...) -> None: ...

class IdentifyReply(_message.Message):
    __slots__ = ("node_id", "address", "model")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    address: str
    model: _types_pb2.ModelIdentity
    def __init__(self, node_id: _Optional[str] = ..., address: _Optional[str] = ..., model: _Optional[_Union[_types_pb2.ModelIdentity, _Mapping]] = ...) -> None: ...

class HelloRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class HelloReply(_message.Message):
    __slots__ = ("node_id", "model", "public_key", "restoring")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    RESTORING_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    model: _types_pb2.ModelIdentity
    public_key: bytes
    restoring: bool
    def __init__(self, node_id: _Optional[str] = ..., model: _Optional[_Union[_types_pb2.ModelIdentity, _Mapping]] = ..., public_key: _Optional[bytes] = ..., restoring: _Optional[bool] = ...) -> None: ...

class OriginMarks(_message.Message):
    __slots__ = ("origin", "watermark", "gc_floor", "resyncing", "resync_from")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    GC_FLOOR_FIELD_NUMBER: _ClassVar[int]
    RESYNCING_FIELD_NUMBER: _ClassVar[int]
    RESYNC_FROM_FIELD_NUMBER: _ClassVar[int]
    origin: str
    watermark: int
    gc_floor: int
    resyncing: bool
    resync_from: int
    def __init__(self, origin: _Optional[str] = ..., watermark: _Optional[int] = ..., gc_floor: _Optional[int] = ..., resyncing: _Optional[bool] = ..., resync_from: _Optional[int] = ...) -> None: ...

class RestartStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RestartStateChunk(_message.Message):
    __slots__ = ("events", "marks", "erasure_record")
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    MARKS_FIELD_NUMBER: _ClassVar[int]
    ERASURE_RECORD_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    marks: _containers.RepeatedCompositeFieldContainer[OriginMarks]
    erasure_record: bytes
    def __init__(self, events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., marks: _Optional[_Iterable[_Union[OriginMarks, _Mapping]]] = ..., erasure_record: _Optional[bytes] = ...) -> None: ...

class DeleteReplica(_message.Message):
    __slots__ = ("memory_id", "forget")
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    FORGET_FIELD_NUMBER: _ClassVar[int]
    memory_id: str
    forget: Event
    def __init__(self, memory_id: _Optional[str] = ..., forget: _Optional[_Union[Event, _Mapping]] = ...) -> None: ...

class DropTombstone(_message.Message):
    __slots__ = ("memory_id", "origin", "seq")
    MEMORY_ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    memory_id: str
    origin: str
    seq: int
    def __init__(self, memory_id: _Optional[str] = ..., origin: _Optional[str] = ..., seq: _Optional[int] = ...) -> None: ...

class Effect(_message.Message):
    __slots__ = ("upsert", "delete", "drop", "marks", "own_seq", "keep_erasures")
    UPSERT_FIELD_NUMBER: _ClassVar[int]
    DELETE_FIELD_NUMBER: _ClassVar[int]
    DROP_FIELD_NUMBER: _ClassVar[int]
    MARKS_FIELD_NUMBER: _ClassVar[int]
    OWN_SEQ_FIELD_NUMBER: _ClassVar[int]
    KEEP_ERASURES_FIELD_NUMBER: _ClassVar[int]
    upsert: Event
    delete: DeleteReplica
    drop: DropTombstone
    marks: OriginMarks
    own_seq: OwnSeqLearned
    keep_erasures: KeepErasures
    def __init__(self, upsert: _Optional[_Union[Event, _Mapping]] = ..., delete: _Optional[_Union[DeleteReplica, _Mapping]] = ..., drop: _Optional[_Union[DropTombstone, _Mapping]] = ..., marks: _Optional[_Union[OriginMarks, _Mapping]] = ..., own_seq: _Optional[_Union[OwnSeqLearned, _Mapping]] = ..., keep_erasures: _Optional[_Union[KeepErasures, _Mapping]] = ...) -> None: ...

class OwnSeqLearned(_message.Message):
    __slots__ = ("watermark", "learned")
    WATERMARK_FIELD_NUMBER: _ClassVar[int]
    LEARNED_FIELD_NUMBER: _ClassVar[int]
    watermark: int
    learned: int
    def __init__(self, watermark: _Optional[int] = ..., learned: _Optional[int] = ...) -> None: ...

class KeepErasures(_message.Message):
    __slots__ = ("record",)
    RECORD_FIELD_NUMBER: _ClassVar[int]
    record: bytes
    def __init__(self, record: _Optional[bytes] = ...) -> None: ...

class PersistRequest(_message.Message):
    __slots__ = ("effects",)
    EFFECTS_FIELD_NUMBER: _ClassVar[int]
    effects: _containers.RepeatedCompositeFieldContainer[Effect]
    def __init__(self, effects: _Optional[_Iterable[_Union[Effect, _Mapping]]] = ...) -> None: ...

class PersistReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReadRunRequest(_message.Message):
    __slots__ = ("origin", "after_seq", "max_events", "max_bytes")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    MAX_EVENTS_FIELD_NUMBER: _ClassVar[int]
    MAX_BYTES_FIELD_NUMBER: _ClassVar[int]
    origin: str
    after_seq: int
    max_events: int
    max_bytes: int
    def __init__(self, origin: _Optional[str] = ..., after_seq: _Optional[int] = ..., max_events: _Optional[int] = ..., max_bytes: _Optional[int] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("after_seq",)
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    def __init__(self, after_seq: _Optional[int] = ...) -> None: ...

class VersionVectorReply(_message.Message):
    __slots__ = ("version_vector",)
    class VersionVectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    VERSION_VECTOR_FIELD_NUMBER: _ClassVar[int]
    version_vector: _containers.ScalarMap[str, int]
    def __init__(self, version_vector: _Optional[_Mapping[str, int]] = ...) -> None: ...

class PeerReport(_message.Message):
    __slots__ = ("peers",)
    PEERS_FIELD_NUMBER: _ClassVar[int]
    peers: _containers.RepeatedCompositeFieldContainer[_types_pb2.PeerStatus]
    def __init__(self, peers: _Optional[_Iterable[_Union[_types_pb2.PeerStatus, _Mapping]]] = ...) -> None: ...

class PeerReportAck(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
