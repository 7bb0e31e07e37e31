// A TypeScript caller of the gateway over gRPC (Connect's Node transport speaks the
// gRPC protocol over HTTP/2). Usage: node dist/caller.js http://localhost:50051 MODEL PROMPT
// Prints the reply as JSON; a failed call prints its gRPC code and message and exits 1.
import { create, toJsonString } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";

import {
  GenerateTextRequestSchema,
  GenerateTextResponseSchema,
  InferenceGateway,
} from "./gen/inference/gateway/v1/gateway_pb.js";

export function gatewayClient(baseUrl: string, token?: string) {
  const transport = createGrpcTransport({
    baseUrl,
    interceptors: token
      ? [
          (next) => async (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ]
      : [],
  });
  return createClient(InferenceGateway, transport);
}

async function main(argv: string[]): Promise<number> {
  const [baseUrl, model, prompt] = argv;
  const client = gatewayClient(baseUrl, process.env.GATEWAY_TOKEN);
  try {
    const reply = await client.generateText(
      create(GenerateTextRequestSchema, { model, prompt }),
      { timeoutMs: 30_000 }, // always set a deadline: the gateway cancels what nobody reads
    );
    console.log(toJsonString(GenerateTextResponseSchema, reply));
    return 0;
  } catch (error) {
    const failure = ConnectError.from(error);
    console.error(`${Code[failure.code]}: ${failure.rawMessage}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
