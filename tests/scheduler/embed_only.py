"""A base for fake embedders that serve only EmbedFile (the scheduler's remotes tests)."""

from __future__ import annotations

import grpc

from datapool.v1 import embedder_pb2, embedder_pb2_grpc


class EmbedOnly(embedder_pb2_grpc.EmbedderServicer):
    """The calls a subclass does not serve answer UNIMPLEMENTED."""

    def GetModelInfo(
        self, request: embedder_pb2.GetModelInfoRequest, context: grpc.ServicerContext
    ) -> embedder_pb2.ModelInfo:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this test")

    def RenderFrames(
        self, request: embedder_pb2.RenderFramesRequest, context: grpc.ServicerContext
    ) -> embedder_pb2.RenderFramesResponse:
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "not in this test")
