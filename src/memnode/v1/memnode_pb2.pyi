from federation.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Privacy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PRIVACY_UNSPECIFIED: _ClassVar[Privacy]
    EPHEMERAL: _ClassVar[Privacy]
    PRIVATE: _ClassVar[Privacy]
    TEAM: _ClassVar[Privacy]
    PUBLIC: _ClassVar[Privacy]

class Scope(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCOPE_UNSPECIFIED: _ClassVar[Scope]
    LOCAL: _ClassVar[Scope]
    MESH: _ClassVar[Scope]

class ChangeKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CHANGE_KIND_UNSPECIFIED: _ClassVar[ChangeKind]
    CHANGE_PUT: _ClassVar[ChangeKind]
    CHANGE_UPDATE: _ClassVar[ChangeKind]
    CHANGE_FORGET: _ClassVar[ChangeKind]
PRIVACY_UNSPECIFIED: Privacy
EPHEMERAL: Privacy
PRIVATE: Privacy
TEAM: Privacy
PUBLIC: Privacy
SCOPE_UNSPECIFIED: Scope
LOCAL: Scope
MESH: Scope
CHANGE_KIND_UNSPECIFIED: ChangeKind
CHANGE_PUT: ChangeKind
CHANGE_UPDATE: ChangeKind
CHANGE_FORGET: ChangeKind

class RememberRequest(_message.Message):
    __slots__ = ("text", "metadata", "privacy", "keep_pii", "ttl_seconds", "embedding", "embedding_model")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    KEEP_PII_FIELD_NUMBER: _ClassVar[int]
    TTL_SECONDS_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    text: str
    metadata: _containers.MessageMap[str, _types_pb2.Value]
    privacy: Privacy
    keep_pii: bool
    ttl_seconds: int
    embedding: bytes
    embedding_model: _types_pb2.ModelIdentity
    def __init__(self, text: _Optional[str] = ..., metadata: _Optional[_Mapping[str, _types_pb2.Value]] = ..., privacy: _Optional[_Union[Privacy, str]] = ..., keep_pii: _Optional[bool] = ..., ttl_seconds: _Optional[int] = ..., embedding: _Optional[bytes] = ..., embedding_model: _Optional[_Union[_types_pb2.ModelIdentity, _Mapping]] = ...) -> None: ...

class RememberResponse(_message.Message):
    __slots__ = ("id", "redactions")
    ID_FIELD_NUMBER: _ClassVar[int]
    REDACTIONS_FIELD_NUMBER: _ClassVar[int]
    id: str
    redactions: int
    def __init__(self, id: _Optional[str] = ..., redactions: _Optional[int] = ...) -> None: ...

class RememberBatchRequest(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[RememberRequest]
    def __init__(self, items: _Optional[_Iterable[_Union[RememberRequest, _Mapping]]] = ...) -> None: ...

class RememberBatchResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[RememberResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[RememberResponse, _Mapping]]] = ...) -> None: ...

class RecallRequest(_message.Message):
    __slots__ = ("query", "k", "scope", "where", "embedding")
    class WhereEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    QUERY_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_FIELD_NUMBER: _ClassVar[int]
    query: str
    k: int
    scope: Scope
    where: _containers.MessageMap[str, _types_pb2.Value]
    embedding: bytes
    def __init__(self, query: _Optional[str] = ..., k: _Optional[int] = ..., scope: _Optional[_Union[Scope, str]] = ..., where: _Optional[_Mapping[str, _types_pb2.Value]] = ..., embedding: _Optional[bytes] = ...) -> None: ...

class Hit(_message.Message):
    __slots__ = ("id", "origin", "score", "text", "metadata", "privacy", "local", "created_at_ms")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    origin: str
    score: float
    text: str
    metadata: _containers.MessageMap[str, _types_pb2.Value]
    privacy: Privacy
    local: bool
    created_at_ms: int
    def __init__(self, id: _Optional[str] = ..., origin: _Optional[str] = ..., score: _Optional[float] = ..., text: _Optional[str] = ..., metadata: _Optional[_Mapping[str, _types_pb2.Value]] = ..., privacy: _Optional[_Union[Privacy, str]] = ..., local: _Optional[bool] = ..., created_at_ms: _Optional[int] = ...) -> None: ...

class RecallResponse(_message.Message):
    __slots__ = ("hits", "embed_seconds", "search_seconds")
    HITS_FIELD_NUMBER: _ClassVar[int]
    EMBED_SECONDS_FIELD_NUMBER: _ClassVar[int]
    SEARCH_SECONDS_FIELD_NUMBER: _ClassVar[int]
    hits: _containers.RepeatedCompositeFieldContainer[Hit]
    embed_seconds: float
    search_seconds: float
    def __init__(self, hits: _Optional[_Iterable[_Union[Hit, _Mapping]]] = ..., embed_seconds: _Optional[float] = ..., search_seconds: _Optional[float] = ...) -> None: ...

class GetRequest(_message.Message):
    __slots__ = ("id",)
    ID_FIELD_NUMBER: _ClassVar[int]
    id: str
    def __init__(self, id: _Optional[str] = ...) -> None: ...

class Memory(_message.Message):
    __slots__ = ("id", "origin", "text", "metadata", "privacy", "local", "created_at_ms", "updated_at_ms", "expires_at_ms")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    PRIVACY_FIELD_NUMBER: _ClassVar[int]
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    EXPIRES_AT_MS_FIELD_NUMBER: _ClassVar[int]
    id: str
    origin: str
    text: str
    metadata: _containers.MessageMap[str, _types_pb2.Value]
    privacy: Privacy
    local: bool
    created_at_ms: int
    updated_at_ms: int
    expires_at_ms: int
    def __init__(self, id: _Optional[str] = ..., origin: _Optional[str] = ..., text: _Optional[str] = ..., metadata: _Optional[_Mapping[str, _types_pb2.Value]] = ..., privacy: _Optional[_Union[Privacy, str]] = ..., local: _Optional[bool] = ..., created_at_ms: _Optional[int] = ..., updated_at_ms: _Optional[int] = ..., expires_at_ms: _Optional[int] = ...) -> None: ...

class UpdateRequest(_message.Message):
    __slots__ = ("id", "metadata", "remove_keys")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    REMOVE_KEYS_FIELD_NUMBER: _ClassVar[int]
    id: str
    metadata: _containers.MessageMap[str, _types_pb2.Value]
    remove_keys: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, id: _Optional[str] = ..., metadata: _Optional[_Mapping[str, _types_pb2.Value]] = ..., remove_keys: _Optional[_Iterable[str]] = ...) -> None: ...

class ForgetRequest(_message.Message):
    __slots__ = ("id", "where")
    class WhereEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    id: str
    where: _containers.MessageMap[str, _types_pb2.Value]
    def __init__(self, id: _Optional[str] = ..., where: _Optional[_Mapping[str, _types_pb2.Value]] = ...) -> None: ...

class ForgetResponse(_message.Message):
    __slots__ = ("forgotten",)
    FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    forgotten: int
    def __init__(self, forgotten: _Optional[int] = ...) -> None: ...

class ListRequest(_message.Message):
    __slots__ = ("page_size", "page_token", "scope", "where")
    class WhereEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _types_pb2.Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_types_pb2.Value, _Mapping]] = ...) -> None: ...
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    WHERE_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    scope: Scope
    where: _containers.MessageMap[str, _types_pb2.Value]
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., scope: _Optional[_Union[Scope, str]] = ..., where: _Optional[_Mapping[str, _types_pb2.Value]] = ...) -> None: ...

class ListResponse(_message.Message):
    __slots__ = ("memories", "next_page_token")
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    memories: _containers.RepeatedCompositeFieldContainer[Memory]
    next_page_token: str
    def __init__(self, memories: _Optional[_Iterable[_Union[Memory, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MemoryCounts(_message.Message):
    __slots__ = ("local", "replicated", "ephemeral")
    LOCAL_FIELD_NUMBER: _ClassVar[int]
    REPLICATED_FIELD_NUMBER: _ClassVar[int]
    EPHEMERAL_FIELD_NUMBER: _ClassVar[int]
    local: int
    replicated: int
    ephemeral: int
    def __init__(self, local: _Optional[int] = ..., replicated: _Optional[int] = ..., ephemeral: _Optional[int] = ...) -> None: ...

class StatusResponse(_message.Message):
    __slots__ = ("node_id", "model", "memories", "version_vector", "peers", "version", "uptime_seconds", "data_dir", "problems", "lost_texts")
    class VersionVectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MEMORIES_FIELD_NUMBER: _ClassVar[int]
    VERSION_VECTOR_FIELD_NUMBER: _ClassVar[int]
    PEERS_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    UPTIME_SECONDS_FIELD_NUMBER: _ClassVar[int]
    DATA_DIR_FIELD_NUMBER: _ClassVar[int]
    PROBLEMS_FIELD_NUMBER: _ClassVar[int]
    LOST_TEXTS_FIELD_NUMBER: _ClassVar[int]
    node_id: str
    model: _types_pb2.ModelIdentity
    memories: MemoryCounts
    version_vector: _containers.ScalarMap[str, int]
    peers: _containers.RepeatedCompositeFieldContainer[_types_pb2.PeerStatus]
    version: str
    uptime_seconds: float
    data_dir: str
    problems: _containers.RepeatedScalarFieldContainer[str]
    lost_texts: int
    def __init__(self, node_id: _Optional[str] = ..., model: _Optional[_Union[_types_pb2.ModelIdentity, _Mapping]] = ..., memories: _Optional[_Union[MemoryCounts, _Mapping]] = ..., version_vector: _Optional[_Mapping[str, int]] = ..., peers: _Optional[_Iterable[_Union[_types_pb2.PeerStatus, _Mapping]]] = ..., version: _Optional[str] = ..., uptime_seconds: _Optional[float] = ..., data_dir: _Optional[str] = ..., problems: _Optional[_Iterable[str]] = ..., lost_texts: _Optional[int] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("file", "data", "manifest")
    FILE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MANIFEST_FIELD_NUMBER: _ClassVar[int]
    file: str
    data: bytes
    manifest: bytes
    def __init__(self, file: _Optional[str] = ..., data: _Optional[bytes] = ..., manifest: _Optional[bytes] = ...) -> None: ...

class WatchRequest(_message.Message):
    __slots__ = ("scope", "from_version_vector")
    class FromVersionVectorEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_VECTOR_FIELD_NUMBER: _ClassVar[int]
    scope: Scope
    from_version_vector: _containers.ScalarMap[str, int]
    def __init__(self, scope: _Optional[_Union[Scope, str]] = ..., from_version_vector: _Optional[_Mapping[str, int]] = ...) -> None: ...

class Change(_message.Message):
    __slots__ = ("origin", "seq", "kind", "memory")
    ORIGIN_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MEMORY_FIELD_NUMBER: _ClassVar[int]
    origin: str
    seq: int
    kind: ChangeKind
    memory: Memory
    def __init__(self, origin: _Optional[str] = ..., seq: _Optional[int] = ..., kind: _Optional[_Union[ChangeKind, str]] = ..., memory: _Optional[_Union[Memory, _Mapping]] = ...) -> None: ...
