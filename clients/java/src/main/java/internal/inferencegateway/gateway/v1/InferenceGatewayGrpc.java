package internal.inferencegateway.gateway.v1;

import static io.grpc.MethodDescriptor.generateFullMethodName;

/**
 * <pre>
 * InferenceGateway runs predictions on Replicate on behalf of its callers.
 * </pre>
 */
@javax.annotation.Generated(
    value = "by gRPC proto compiler",
    comments = "Source: inference/gateway/v1/gateway.proto")
@io.grpc.stub.annotations.GrpcGenerated
public final class InferenceGatewayGrpc {

  private InferenceGatewayGrpc() {}

  public static final String SERVICE_NAME = "inference.gateway.v1.InferenceGateway";

  // Static method descriptors that strictly reflect the proto.
  private static volatile io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateTextRequest,
      internal.inferencegateway.gateway.v1.GenerateTextResponse> getGenerateTextMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GenerateText",
      requestType = internal.inferencegateway.gateway.v1.GenerateTextRequest.class,
      responseType = internal.inferencegateway.gateway.v1.GenerateTextResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateTextRequest,
      internal.inferencegateway.gateway.v1.GenerateTextResponse> getGenerateTextMethod() {
    io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateTextRequest, internal.inferencegateway.gateway.v1.GenerateTextResponse> getGenerateTextMethod;
    if ((getGenerateTextMethod = InferenceGatewayGrpc.getGenerateTextMethod) == null) {
      synchronized (InferenceGatewayGrpc.class) {
        if ((getGenerateTextMethod = InferenceGatewayGrpc.getGenerateTextMethod) == null) {
          InferenceGatewayGrpc.getGenerateTextMethod = getGenerateTextMethod =
              io.grpc.MethodDescriptor.<internal.inferencegateway.gateway.v1.GenerateTextRequest, internal.inferencegateway.gateway.v1.GenerateTextResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GenerateText"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.GenerateTextRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.GenerateTextResponse.getDefaultInstance()))
              .setSchemaDescriptor(new InferenceGatewayMethodDescriptorSupplier("GenerateText"))
              .build();
        }
      }
    }
    return getGenerateTextMethod;
  }

  private static volatile io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateTextRequest,
      internal.inferencegateway.gateway.v1.StreamTextResponse> getStreamTextMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "StreamText",
      requestType = internal.inferencegateway.gateway.v1.GenerateTextRequest.class,
      responseType = internal.inferencegateway.gateway.v1.StreamTextResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
  public static io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateTextRequest,
      internal.inferencegateway.gateway.v1.StreamTextResponse> getStreamTextMethod() {
    io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateTextRequest, internal.inferencegateway.gateway.v1.StreamTextResponse> getStreamTextMethod;
    if ((getStreamTextMethod = InferenceGatewayGrpc.getStreamTextMethod) == null) {
      synchronized (InferenceGatewayGrpc.class) {
        if ((getStreamTextMethod = InferenceGatewayGrpc.getStreamTextMethod) == null) {
          InferenceGatewayGrpc.getStreamTextMethod = getStreamTextMethod =
              io.grpc.MethodDescriptor.<internal.inferencegateway.gateway.v1.GenerateTextRequest, internal.inferencegateway.gateway.v1.StreamTextResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.SERVER_STREAMING)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "StreamText"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.GenerateTextRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.StreamTextResponse.getDefaultInstance()))
              .setSchemaDescriptor(new InferenceGatewayMethodDescriptorSupplier("StreamText"))
              .build();
        }
      }
    }
    return getStreamTextMethod;
  }

  private static volatile io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateImageRequest,
      internal.inferencegateway.gateway.v1.GenerateImageResponse> getGenerateImageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GenerateImage",
      requestType = internal.inferencegateway.gateway.v1.GenerateImageRequest.class,
      responseType = internal.inferencegateway.gateway.v1.GenerateImageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateImageRequest,
      internal.inferencegateway.gateway.v1.GenerateImageResponse> getGenerateImageMethod() {
    io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GenerateImageRequest, internal.inferencegateway.gateway.v1.GenerateImageResponse> getGenerateImageMethod;
    if ((getGenerateImageMethod = InferenceGatewayGrpc.getGenerateImageMethod) == null) {
      synchronized (InferenceGatewayGrpc.class) {
        if ((getGenerateImageMethod = InferenceGatewayGrpc.getGenerateImageMethod) == null) {
          InferenceGatewayGrpc.getGenerateImageMethod = getGenerateImageMethod =
              io.grpc.MethodDescriptor.<internal.inferencegateway.gateway.v1.GenerateImageRequest, internal.inferencegateway.gateway.v1.GenerateImageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GenerateImage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.GenerateImageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.GenerateImageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new InferenceGatewayMethodDescriptorSupplier("GenerateImage"))
              .build();
        }
      }
    }
    return getGenerateImageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.ListModelsRequest,
      internal.inferencegateway.gateway.v1.ListModelsResponse> getListModelsMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "ListModels",
      requestType = internal.inferencegateway.gateway.v1.ListModelsRequest.class,
      responseType = internal.inferencegateway.gateway.v1.ListModelsResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.ListModelsRequest,
      internal.inferencegateway.gateway.v1.ListModelsResponse> getListModelsMethod() {
    io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.ListModelsRequest, internal.inferencegateway.gateway.v1.ListModelsResponse> getListModelsMethod;
    if ((getListModelsMethod = InferenceGatewayGrpc.getListModelsMethod) == null) {
      synchronized (InferenceGatewayGrpc.class) {
        if ((getListModelsMethod = InferenceGatewayGrpc.getListModelsMethod) == null) {
          InferenceGatewayGrpc.getListModelsMethod = getListModelsMethod =
              io.grpc.MethodDescriptor.<internal.inferencegateway.gateway.v1.ListModelsRequest, internal.inferencegateway.gateway.v1.ListModelsResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "ListModels"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.ListModelsRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.ListModelsResponse.getDefaultInstance()))
              .setSchemaDescriptor(new InferenceGatewayMethodDescriptorSupplier("ListModels"))
              .build();
        }
      }
    }
    return getListModelsMethod;
  }

  private static volatile io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GetUsageRequest,
      internal.inferencegateway.gateway.v1.GetUsageResponse> getGetUsageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "GetUsage",
      requestType = internal.inferencegateway.gateway.v1.GetUsageRequest.class,
      responseType = internal.inferencegateway.gateway.v1.GetUsageResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GetUsageRequest,
      internal.inferencegateway.gateway.v1.GetUsageResponse> getGetUsageMethod() {
    io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.GetUsageRequest, internal.inferencegateway.gateway.v1.GetUsageResponse> getGetUsageMethod;
    if ((getGetUsageMethod = InferenceGatewayGrpc.getGetUsageMethod) == null) {
      synchronized (InferenceGatewayGrpc.class) {
        if ((getGetUsageMethod = InferenceGatewayGrpc.getGetUsageMethod) == null) {
          InferenceGatewayGrpc.getGetUsageMethod = getGetUsageMethod =
              io.grpc.MethodDescriptor.<internal.inferencegateway.gateway.v1.GetUsageRequest, internal.inferencegateway.gateway.v1.GetUsageResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "GetUsage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.GetUsageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.GetUsageResponse.getDefaultInstance()))
              .setSchemaDescriptor(new InferenceGatewayMethodDescriptorSupplier("GetUsage"))
              .build();
        }
      }
    }
    return getGetUsageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.SubmitTextRequest,
      com.google.longrunning.Operation> getSubmitTextMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SubmitText",
      requestType = internal.inferencegateway.gateway.v1.SubmitTextRequest.class,
      responseType = com.google.longrunning.Operation.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.SubmitTextRequest,
      com.google.longrunning.Operation> getSubmitTextMethod() {
    io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.SubmitTextRequest, com.google.longrunning.Operation> getSubmitTextMethod;
    if ((getSubmitTextMethod = InferenceGatewayGrpc.getSubmitTextMethod) == null) {
      synchronized (InferenceGatewayGrpc.class) {
        if ((getSubmitTextMethod = InferenceGatewayGrpc.getSubmitTextMethod) == null) {
          InferenceGatewayGrpc.getSubmitTextMethod = getSubmitTextMethod =
              io.grpc.MethodDescriptor.<internal.inferencegateway.gateway.v1.SubmitTextRequest, com.google.longrunning.Operation>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SubmitText"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.SubmitTextRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.google.longrunning.Operation.getDefaultInstance()))
              .setSchemaDescriptor(new InferenceGatewayMethodDescriptorSupplier("SubmitText"))
              .build();
        }
      }
    }
    return getSubmitTextMethod;
  }

  private static volatile io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.SubmitImageRequest,
      com.google.longrunning.Operation> getSubmitImageMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "SubmitImage",
      requestType = internal.inferencegateway.gateway.v1.SubmitImageRequest.class,
      responseType = com.google.longrunning.Operation.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.SubmitImageRequest,
      com.google.longrunning.Operation> getSubmitImageMethod() {
    io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.SubmitImageRequest, com.google.longrunning.Operation> getSubmitImageMethod;
    if ((getSubmitImageMethod = InferenceGatewayGrpc.getSubmitImageMethod) == null) {
      synchronized (InferenceGatewayGrpc.class) {
        if ((getSubmitImageMethod = InferenceGatewayGrpc.getSubmitImageMethod) == null) {
          InferenceGatewayGrpc.getSubmitImageMethod = getSubmitImageMethod =
              io.grpc.MethodDescriptor.<internal.inferencegateway.gateway.v1.SubmitImageRequest, com.google.longrunning.Operation>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "SubmitImage"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.SubmitImageRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  com.google.longrunning.Operation.getDefaultInstance()))
              .setSchemaDescriptor(new InferenceGatewayMethodDescriptorSupplier("SubmitImage"))
              .build();
        }
      }
    }
    return getSubmitImageMethod;
  }

  private static volatile io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.WarmModelRequest,
      internal.inferencegateway.gateway.v1.WarmModelResponse> getWarmModelMethod;

  @io.grpc.stub.annotations.RpcMethod(
      fullMethodName = SERVICE_NAME + '/' + "WarmModel",
      requestType = internal.inferencegateway.gateway.v1.WarmModelRequest.class,
      responseType = internal.inferencegateway.gateway.v1.WarmModelResponse.class,
      methodType = io.grpc.MethodDescriptor.MethodType.UNARY)
  public static io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.WarmModelRequest,
      internal.inferencegateway.gateway.v1.WarmModelResponse> getWarmModelMethod() {
    io.grpc.MethodDescriptor<internal.inferencegateway.gateway.v1.WarmModelRequest, internal.inferencegateway.gateway.v1.WarmModelResponse> getWarmModelMethod;
    if ((getWarmModelMethod = InferenceGatewayGrpc.getWarmModelMethod) == null) {
      synchronized (InferenceGatewayGrpc.class) {
        if ((getWarmModelMethod = InferenceGatewayGrpc.getWarmModelMethod) == null) {
          InferenceGatewayGrpc.getWarmModelMethod = getWarmModelMethod =
              io.grpc.MethodDescriptor.<internal.inferencegateway.gateway.v1.WarmModelRequest, internal.inferencegateway.gateway.v1.WarmModelResponse>newBuilder()
              .setType(io.grpc.MethodDescriptor.MethodType.UNARY)
              .setFullMethodName(generateFullMethodName(SERVICE_NAME, "WarmModel"))
              .setSampledToLocalTracing(true)
              .setRequestMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.WarmModelRequest.getDefaultInstance()))
              .setResponseMarshaller(io.grpc.protobuf.ProtoUtils.marshaller(
                  internal.inferencegateway.gateway.v1.WarmModelResponse.getDefaultInstance()))
              .setSchemaDescriptor(new InferenceGatewayMethodDescriptorSupplier("WarmModel"))
              .build();
        }
      }
    }
    return getWarmModelMethod;
  }

  /**
   * Creates a new async stub that supports all call types for the service
   */
  public static InferenceGatewayStub newStub(io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<InferenceGatewayStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<InferenceGatewayStub>() {
        @java.lang.Override
        public InferenceGatewayStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new InferenceGatewayStub(channel, callOptions);
        }
      };
    return InferenceGatewayStub.newStub(factory, channel);
  }

  /**
   * Creates a new blocking-style stub that supports unary and streaming output calls on the service
   */
  public static InferenceGatewayBlockingStub newBlockingStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<InferenceGatewayBlockingStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<InferenceGatewayBlockingStub>() {
        @java.lang.Override
        public InferenceGatewayBlockingStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new InferenceGatewayBlockingStub(channel, callOptions);
        }
      };
    return InferenceGatewayBlockingStub.newStub(factory, channel);
  }

  /**
   * Creates a new ListenableFuture-style stub that supports unary calls on the service
   */
  public static InferenceGatewayFutureStub newFutureStub(
      io.grpc.Channel channel) {
    io.grpc.stub.AbstractStub.StubFactory<InferenceGatewayFutureStub> factory =
      new io.grpc.stub.AbstractStub.StubFactory<InferenceGatewayFutureStub>() {
        @java.lang.Override
        public InferenceGatewayFutureStub newStub(io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
          return new InferenceGatewayFutureStub(channel, callOptions);
        }
      };
    return InferenceGatewayFutureStub.newStub(factory, channel);
  }

  /**
   * <pre>
   * InferenceGateway runs predictions on Replicate on behalf of its callers.
   * </pre>
   */
  public static abstract class InferenceGatewayImplBase implements io.grpc.BindableService {

    /**
     * <pre>
     * GenerateText runs a text model and waits for the prediction to finish.
     * </pre>
     */
    public void generateText(internal.inferencegateway.gateway.v1.GenerateTextRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GenerateTextResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGenerateTextMethod(), responseObserver);
    }

    /**
     * <pre>
     * StreamText relays text as the model produces it. The last message
     * carries the prediction's summary.
     * </pre>
     */
    public void streamText(internal.inferencegateway.gateway.v1.GenerateTextRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.StreamTextResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getStreamTextMethod(), responseObserver);
    }

    /**
     * <pre>
     * GenerateImage runs an image model and returns every image it produced.
     * </pre>
     */
    public void generateImage(internal.inferencegateway.gateway.v1.GenerateImageRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GenerateImageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGenerateImageMethod(), responseObserver);
    }

    /**
     * <pre>
     * ListModels lists the configured aliases and what each resolves to.
     * </pre>
     */
    public void listModels(internal.inferencegateway.gateway.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getListModelsMethod(), responseObserver);
    }

    /**
     * <pre>
     * GetUsage returns the calling caller's own spend and remaining budget for
     * the current period.
     * </pre>
     */
    public void getUsage(internal.inferencegateway.gateway.v1.GetUsageRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GetUsageResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getGetUsageMethod(), responseObserver);
    }

    /**
     * <pre>
     * SubmitText starts a text prediction and returns at once with a
     * google.longrunning.Operation; read it with the google.longrunning.Operations
     * service (Get, Wait, Cancel, List) on any replica. Two typed Submit RPCs
     * rather than one with a oneof: each names its own response type below, as
     * AIP-151 asks, mirrors the blocking RPC whose request it wraps, and lets a
     * caller's permissions and metrics tell text from images by method name.
     * buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
     * AIP-151: a long-running method returns google.longrunning.Operation.
     * </pre>
     */
    public void submitText(internal.inferencegateway.gateway.v1.SubmitTextRequest request,
        io.grpc.stub.StreamObserver<com.google.longrunning.Operation> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSubmitTextMethod(), responseObserver);
    }

    /**
     * <pre>
     * SubmitImage starts an image prediction and returns at once; see SubmitText.
     * buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
     * AIP-151: a long-running method returns google.longrunning.Operation.
     * </pre>
     */
    public void submitImage(internal.inferencegateway.gateway.v1.SubmitImageRequest request,
        io.grpc.stub.StreamObserver<com.google.longrunning.Operation> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getSubmitImageMethod(), responseObserver);
    }

    /**
     * <pre>
     * Keeps a deployment's instances running for a while (its min_instances raised),
     * ahead of a known burst; only callers granted it (callers.NAME.warm). Many calls
     * within the time cause one update, across replicas; the previous value comes back
     * when the time is up. An RPC rather than an admin endpoint: it reuses the callers'
     * tokens, the request log, metrics and reflection.
     * </pre>
     */
    public void warmModel(internal.inferencegateway.gateway.v1.WarmModelRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.WarmModelResponse> responseObserver) {
      io.grpc.stub.ServerCalls.asyncUnimplementedUnaryCall(getWarmModelMethod(), responseObserver);
    }

    @java.lang.Override public final io.grpc.ServerServiceDefinition bindService() {
      return io.grpc.ServerServiceDefinition.builder(getServiceDescriptor())
          .addMethod(
            getGenerateTextMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                internal.inferencegateway.gateway.v1.GenerateTextRequest,
                internal.inferencegateway.gateway.v1.GenerateTextResponse>(
                  this, METHODID_GENERATE_TEXT)))
          .addMethod(
            getStreamTextMethod(),
            io.grpc.stub.ServerCalls.asyncServerStreamingCall(
              new MethodHandlers<
                internal.inferencegateway.gateway.v1.GenerateTextRequest,
                internal.inferencegateway.gateway.v1.StreamTextResponse>(
                  this, METHODID_STREAM_TEXT)))
          .addMethod(
            getGenerateImageMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                internal.inferencegateway.gateway.v1.GenerateImageRequest,
                internal.inferencegateway.gateway.v1.GenerateImageResponse>(
                  this, METHODID_GENERATE_IMAGE)))
          .addMethod(
            getListModelsMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                internal.inferencegateway.gateway.v1.ListModelsRequest,
                internal.inferencegateway.gateway.v1.ListModelsResponse>(
                  this, METHODID_LIST_MODELS)))
          .addMethod(
            getGetUsageMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                internal.inferencegateway.gateway.v1.GetUsageRequest,
                internal.inferencegateway.gateway.v1.GetUsageResponse>(
                  this, METHODID_GET_USAGE)))
          .addMethod(
            getSubmitTextMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                internal.inferencegateway.gateway.v1.SubmitTextRequest,
                com.google.longrunning.Operation>(
                  this, METHODID_SUBMIT_TEXT)))
          .addMethod(
            getSubmitImageMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                internal.inferencegateway.gateway.v1.SubmitImageRequest,
                com.google.longrunning.Operation>(
                  this, METHODID_SUBMIT_IMAGE)))
          .addMethod(
            getWarmModelMethod(),
            io.grpc.stub.ServerCalls.asyncUnaryCall(
              new MethodHandlers<
                internal.inferencegateway.gateway.v1.WarmModelRequest,
                internal.inferencegateway.gateway.v1.WarmModelResponse>(
                  this, METHODID_WARM_MODEL)))
          .build();
    }
  }

  /**
   * <pre>
   * InferenceGateway runs predictions on Replicate on behalf of its callers.
   * </pre>
   */
  public static final class InferenceGatewayStub extends io.grpc.stub.AbstractAsyncStub<InferenceGatewayStub> {
    private InferenceGatewayStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected InferenceGatewayStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new InferenceGatewayStub(channel, callOptions);
    }

    /**
     * <pre>
     * GenerateText runs a text model and waits for the prediction to finish.
     * </pre>
     */
    public void generateText(internal.inferencegateway.gateway.v1.GenerateTextRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GenerateTextResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGenerateTextMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * StreamText relays text as the model produces it. The last message
     * carries the prediction's summary.
     * </pre>
     */
    public void streamText(internal.inferencegateway.gateway.v1.GenerateTextRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.StreamTextResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncServerStreamingCall(
          getChannel().newCall(getStreamTextMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GenerateImage runs an image model and returns every image it produced.
     * </pre>
     */
    public void generateImage(internal.inferencegateway.gateway.v1.GenerateImageRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GenerateImageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGenerateImageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * ListModels lists the configured aliases and what each resolves to.
     * </pre>
     */
    public void listModels(internal.inferencegateway.gateway.v1.ListModelsRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.ListModelsResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * GetUsage returns the calling caller's own spend and remaining budget for
     * the current period.
     * </pre>
     */
    public void getUsage(internal.inferencegateway.gateway.v1.GetUsageRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GetUsageResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getGetUsageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * SubmitText starts a text prediction and returns at once with a
     * google.longrunning.Operation; read it with the google.longrunning.Operations
     * service (Get, Wait, Cancel, List) on any replica. Two typed Submit RPCs
     * rather than one with a oneof: each names its own response type below, as
     * AIP-151 asks, mirrors the blocking RPC whose request it wraps, and lets a
     * caller's permissions and metrics tell text from images by method name.
     * buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
     * AIP-151: a long-running method returns google.longrunning.Operation.
     * </pre>
     */
    public void submitText(internal.inferencegateway.gateway.v1.SubmitTextRequest request,
        io.grpc.stub.StreamObserver<com.google.longrunning.Operation> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSubmitTextMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * SubmitImage starts an image prediction and returns at once; see SubmitText.
     * buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
     * AIP-151: a long-running method returns google.longrunning.Operation.
     * </pre>
     */
    public void submitImage(internal.inferencegateway.gateway.v1.SubmitImageRequest request,
        io.grpc.stub.StreamObserver<com.google.longrunning.Operation> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getSubmitImageMethod(), getCallOptions()), request, responseObserver);
    }

    /**
     * <pre>
     * Keeps a deployment's instances running for a while (its min_instances raised),
     * ahead of a known burst; only callers granted it (callers.NAME.warm). Many calls
     * within the time cause one update, across replicas; the previous value comes back
     * when the time is up. An RPC rather than an admin endpoint: it reuses the callers'
     * tokens, the request log, metrics and reflection.
     * </pre>
     */
    public void warmModel(internal.inferencegateway.gateway.v1.WarmModelRequest request,
        io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.WarmModelResponse> responseObserver) {
      io.grpc.stub.ClientCalls.asyncUnaryCall(
          getChannel().newCall(getWarmModelMethod(), getCallOptions()), request, responseObserver);
    }
  }

  /**
   * <pre>
   * InferenceGateway runs predictions on Replicate on behalf of its callers.
   * </pre>
   */
  public static final class InferenceGatewayBlockingStub extends io.grpc.stub.AbstractBlockingStub<InferenceGatewayBlockingStub> {
    private InferenceGatewayBlockingStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected InferenceGatewayBlockingStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new InferenceGatewayBlockingStub(channel, callOptions);
    }

    /**
     * <pre>
     * GenerateText runs a text model and waits for the prediction to finish.
     * </pre>
     */
    public internal.inferencegateway.gateway.v1.GenerateTextResponse generateText(internal.inferencegateway.gateway.v1.GenerateTextRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGenerateTextMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * StreamText relays text as the model produces it. The last message
     * carries the prediction's summary.
     * </pre>
     */
    public java.util.Iterator<internal.inferencegateway.gateway.v1.StreamTextResponse> streamText(
        internal.inferencegateway.gateway.v1.GenerateTextRequest request) {
      return io.grpc.stub.ClientCalls.blockingServerStreamingCall(
          getChannel(), getStreamTextMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GenerateImage runs an image model and returns every image it produced.
     * </pre>
     */
    public internal.inferencegateway.gateway.v1.GenerateImageResponse generateImage(internal.inferencegateway.gateway.v1.GenerateImageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGenerateImageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * ListModels lists the configured aliases and what each resolves to.
     * </pre>
     */
    public internal.inferencegateway.gateway.v1.ListModelsResponse listModels(internal.inferencegateway.gateway.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getListModelsMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * GetUsage returns the calling caller's own spend and remaining budget for
     * the current period.
     * </pre>
     */
    public internal.inferencegateway.gateway.v1.GetUsageResponse getUsage(internal.inferencegateway.gateway.v1.GetUsageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getGetUsageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * SubmitText starts a text prediction and returns at once with a
     * google.longrunning.Operation; read it with the google.longrunning.Operations
     * service (Get, Wait, Cancel, List) on any replica. Two typed Submit RPCs
     * rather than one with a oneof: each names its own response type below, as
     * AIP-151 asks, mirrors the blocking RPC whose request it wraps, and lets a
     * caller's permissions and metrics tell text from images by method name.
     * buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
     * AIP-151: a long-running method returns google.longrunning.Operation.
     * </pre>
     */
    public com.google.longrunning.Operation submitText(internal.inferencegateway.gateway.v1.SubmitTextRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSubmitTextMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * SubmitImage starts an image prediction and returns at once; see SubmitText.
     * buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
     * AIP-151: a long-running method returns google.longrunning.Operation.
     * </pre>
     */
    public com.google.longrunning.Operation submitImage(internal.inferencegateway.gateway.v1.SubmitImageRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getSubmitImageMethod(), getCallOptions(), request);
    }

    /**
     * <pre>
     * Keeps a deployment's instances running for a while (its min_instances raised),
     * ahead of a known burst; only callers granted it (callers.NAME.warm). Many calls
     * within the time cause one update, across replicas; the previous value comes back
     * when the time is up. An RPC rather than an admin endpoint: it reuses the callers'
     * tokens, the request log, metrics and reflection.
     * </pre>
     */
    public internal.inferencegateway.gateway.v1.WarmModelResponse warmModel(internal.inferencegateway.gateway.v1.WarmModelRequest request) {
      return io.grpc.stub.ClientCalls.blockingUnaryCall(
          getChannel(), getWarmModelMethod(), getCallOptions(), request);
    }
  }

  /**
   * <pre>
   * InferenceGateway runs predictions on Replicate on behalf of its callers.
   * </pre>
   */
  public static final class InferenceGatewayFutureStub extends io.grpc.stub.AbstractFutureStub<InferenceGatewayFutureStub> {
    private InferenceGatewayFutureStub(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      super(channel, callOptions);
    }

    @java.lang.Override
    protected InferenceGatewayFutureStub build(
        io.grpc.Channel channel, io.grpc.CallOptions callOptions) {
      return new InferenceGatewayFutureStub(channel, callOptions);
    }

    /**
     * <pre>
     * GenerateText runs a text model and waits for the prediction to finish.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<internal.inferencegateway.gateway.v1.GenerateTextResponse> generateText(
        internal.inferencegateway.gateway.v1.GenerateTextRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGenerateTextMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GenerateImage runs an image model and returns every image it produced.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<internal.inferencegateway.gateway.v1.GenerateImageResponse> generateImage(
        internal.inferencegateway.gateway.v1.GenerateImageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGenerateImageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * ListModels lists the configured aliases and what each resolves to.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<internal.inferencegateway.gateway.v1.ListModelsResponse> listModels(
        internal.inferencegateway.gateway.v1.ListModelsRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getListModelsMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * GetUsage returns the calling caller's own spend and remaining budget for
     * the current period.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<internal.inferencegateway.gateway.v1.GetUsageResponse> getUsage(
        internal.inferencegateway.gateway.v1.GetUsageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getGetUsageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * SubmitText starts a text prediction and returns at once with a
     * google.longrunning.Operation; read it with the google.longrunning.Operations
     * service (Get, Wait, Cancel, List) on any replica. Two typed Submit RPCs
     * rather than one with a oneof: each names its own response type below, as
     * AIP-151 asks, mirrors the blocking RPC whose request it wraps, and lets a
     * caller's permissions and metrics tell text from images by method name.
     * buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
     * AIP-151: a long-running method returns google.longrunning.Operation.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.google.longrunning.Operation> submitText(
        internal.inferencegateway.gateway.v1.SubmitTextRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSubmitTextMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * SubmitImage starts an image prediction and returns at once; see SubmitText.
     * buf:lint:ignore RPC_RESPONSE_STANDARD_NAME
     * AIP-151: a long-running method returns google.longrunning.Operation.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<com.google.longrunning.Operation> submitImage(
        internal.inferencegateway.gateway.v1.SubmitImageRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getSubmitImageMethod(), getCallOptions()), request);
    }

    /**
     * <pre>
     * Keeps a deployment's instances running for a while (its min_instances raised),
     * ahead of a known burst; only callers granted it (callers.NAME.warm). Many calls
     * within the time cause one update, across replicas; the previous value comes back
     * when the time is up. An RPC rather than an admin endpoint: it reuses the callers'
     * tokens, the request log, metrics and reflection.
     * </pre>
     */
    public com.google.common.util.concurrent.ListenableFuture<internal.inferencegateway.gateway.v1.WarmModelResponse> warmModel(
        internal.inferencegateway.gateway.v1.WarmModelRequest request) {
      return io.grpc.stub.ClientCalls.futureUnaryCall(
          getChannel().newCall(getWarmModelMethod(), getCallOptions()), request);
    }
  }

  private static final int METHODID_GENERATE_TEXT = 0;
  private static final int METHODID_STREAM_TEXT = 1;
  private static final int METHODID_GENERATE_IMAGE = 2;
  private static final int METHODID_LIST_MODELS = 3;
  private static final int METHODID_GET_USAGE = 4;
  private static final int METHODID_SUBMIT_TEXT = 5;
  private static final int METHODID_SUBMIT_IMAGE = 6;
  private static final int METHODID_WARM_MODEL = 7;

  private static final class MethodHandlers<Req, Resp> implements
      io.grpc.stub.ServerCalls.UnaryMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ServerStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.ClientStreamingMethod<Req, Resp>,
      io.grpc.stub.ServerCalls.BidiStreamingMethod<Req, Resp> {
    private final InferenceGatewayImplBase serviceImpl;
    private final int methodId;

    MethodHandlers(InferenceGatewayImplBase serviceImpl, int methodId) {
      this.serviceImpl = serviceImpl;
      this.methodId = methodId;
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public void invoke(Req request, io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        case METHODID_GENERATE_TEXT:
          serviceImpl.generateText((internal.inferencegateway.gateway.v1.GenerateTextRequest) request,
              (io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GenerateTextResponse>) responseObserver);
          break;
        case METHODID_STREAM_TEXT:
          serviceImpl.streamText((internal.inferencegateway.gateway.v1.GenerateTextRequest) request,
              (io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.StreamTextResponse>) responseObserver);
          break;
        case METHODID_GENERATE_IMAGE:
          serviceImpl.generateImage((internal.inferencegateway.gateway.v1.GenerateImageRequest) request,
              (io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GenerateImageResponse>) responseObserver);
          break;
        case METHODID_LIST_MODELS:
          serviceImpl.listModels((internal.inferencegateway.gateway.v1.ListModelsRequest) request,
              (io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.ListModelsResponse>) responseObserver);
          break;
        case METHODID_GET_USAGE:
          serviceImpl.getUsage((internal.inferencegateway.gateway.v1.GetUsageRequest) request,
              (io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.GetUsageResponse>) responseObserver);
          break;
        case METHODID_SUBMIT_TEXT:
          serviceImpl.submitText((internal.inferencegateway.gateway.v1.SubmitTextRequest) request,
              (io.grpc.stub.StreamObserver<com.google.longrunning.Operation>) responseObserver);
          break;
        case METHODID_SUBMIT_IMAGE:
          serviceImpl.submitImage((internal.inferencegateway.gateway.v1.SubmitImageRequest) request,
              (io.grpc.stub.StreamObserver<com.google.longrunning.Operation>) responseObserver);
          break;
        case METHODID_WARM_MODEL:
          serviceImpl.warmModel((internal.inferencegateway.gateway.v1.WarmModelRequest) request,
              (io.grpc.stub.StreamObserver<internal.inferencegateway.gateway.v1.WarmModelResponse>) responseObserver);
          break;
        default:
          throw new AssertionError();
      }
    }

    @java.lang.Override
    @java.lang.SuppressWarnings("unchecked")
    public io.grpc.stub.StreamObserver<Req> invoke(
        io.grpc.stub.StreamObserver<Resp> responseObserver) {
      switch (methodId) {
        default:
          throw new AssertionError();
      }
    }
  }

  private static abstract class InferenceGatewayBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoFileDescriptorSupplier, io.grpc.protobuf.ProtoServiceDescriptorSupplier {
    InferenceGatewayBaseDescriptorSupplier() {}

    @java.lang.Override
    public com.google.protobuf.Descriptors.FileDescriptor getFileDescriptor() {
      return internal.inferencegateway.gateway.v1.GatewayProto.getDescriptor();
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.ServiceDescriptor getServiceDescriptor() {
      return getFileDescriptor().findServiceByName("InferenceGateway");
    }
  }

  private static final class InferenceGatewayFileDescriptorSupplier
      extends InferenceGatewayBaseDescriptorSupplier {
    InferenceGatewayFileDescriptorSupplier() {}
  }

  private static final class InferenceGatewayMethodDescriptorSupplier
      extends InferenceGatewayBaseDescriptorSupplier
      implements io.grpc.protobuf.ProtoMethodDescriptorSupplier {
    private final String methodName;

    InferenceGatewayMethodDescriptorSupplier(String methodName) {
      this.methodName = methodName;
    }

    @java.lang.Override
    public com.google.protobuf.Descriptors.MethodDescriptor getMethodDescriptor() {
      return getServiceDescriptor().findMethodByName(methodName);
    }
  }

  private static volatile io.grpc.ServiceDescriptor serviceDescriptor;

  public static io.grpc.ServiceDescriptor getServiceDescriptor() {
    io.grpc.ServiceDescriptor result = serviceDescriptor;
    if (result == null) {
      synchronized (InferenceGatewayGrpc.class) {
        result = serviceDescriptor;
        if (result == null) {
          serviceDescriptor = result = io.grpc.ServiceDescriptor.newBuilder(SERVICE_NAME)
              .setSchemaDescriptor(new InferenceGatewayFileDescriptorSupplier())
              .addMethod(getGenerateTextMethod())
              .addMethod(getStreamTextMethod())
              .addMethod(getGenerateImageMethod())
              .addMethod(getListModelsMethod())
              .addMethod(getGetUsageMethod())
              .addMethod(getSubmitTextMethod())
              .addMethod(getSubmitImageMethod())
              .addMethod(getWarmModelMethod())
              .build();
        }
      }
    }
    return result;
  }
}
