"""Calls every method of a service, whatever its shape, with an empty request: for checks that
must cover each method a proto declares, including ones added later."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from datapool.v1 import embedder_pb2, selector_pb2

SELECTOR = selector_pb2.DESCRIPTOR.services_by_name["Selector"]
EMBEDDER = embedder_pb2.DESCRIPTOR.services_by_name["Embedder"]
TIMEOUT_S = 20.0


@dataclass(frozen=True)
class Outcome:
    method: str
    code: grpc.StatusCode
    details: str


def call(
    channel: grpc.Channel, method: MethodDescriptor, metadata: tuple[tuple[str, str], ...] = ()
) -> Outcome:
    """Calls `method` with one empty request message; the status it ended with."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    request_cls: Any = message_factory.GetMessageClass(method.input_type)
    response_cls: Any = message_factory.GetMessageClass(method.output_type)
    kind: Any = {
        (False, False): channel.unary_unary,
        (False, True): channel.unary_stream,
        (True, False): channel.stream_unary,
        (True, True): channel.stream_stream,
    }[(method.client_streaming, method.server_streaming)]
    stub = kind(
        path, request_serializer=request_cls.SerializeToString, response_deserializer=response_cls.FromString
    )
    request = iter([request_cls()]) if method.client_streaming else request_cls()
    try:
        result = stub(request, timeout=TIMEOUT_S, metadata=metadata)
        if method.server_streaming:
            list(result)
    except grpc.RpcError as e:
        assert isinstance(e, grpc.Call)
        return Outcome(method.name, e.code(), e.details() or "")
    return Outcome(method.name, grpc.StatusCode.OK, "")


def every_method(service: ServiceDescriptor) -> list[MethodDescriptor]:
    return list(service.methods)


def health_and_reflection_answer(channel: grpc.Channel, service: ServiceDescriptor) -> None:
    """Asserts that health and reflection answer without any credentials."""
    health = health_pb2_grpc.HealthStub(channel)
    status = health.Check(health_pb2.HealthCheckRequest(service=service.full_name), timeout=TIMEOUT_S)
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    reflect = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = list(
        reflect.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT_S
        )
    )
    names = {s.name for s in answers[0].list_services_response.service}
    assert service.full_name in names
