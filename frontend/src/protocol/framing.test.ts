import { describe, expect, it } from "vitest";
import { decodeFrame, encodeFrame, FrameTooLargeError, MAX_FRAME_BYTES } from "./framing";

describe("encodeFrame", () => {
  it("serialises a client message as one JSON text frame", () => {
    const frame = encodeFrame({ type: "generation.subscribe", generation_id: "g1", after_seq: 4 });
    expect(JSON.parse(frame)).toEqual({ type: "generation.subscribe", generation_id: "g1", after_seq: 4 });
  });

  it("refuses a frame over the 64 KiB limit, counting UTF-8 bytes not characters", () => {
    // 22,000 three-byte characters: 66,000 bytes but only 22,000 UTF-16 code units.
    const content = "€".repeat(22_000);
    expect(content.length).toBeLessThan(MAX_FRAME_BYTES);
    expect(() =>
      encodeFrame({ type: "chat.send", request_id: "r", conversation_id: null, content }),
    ).toThrow(FrameTooLargeError);
  });
});

describe("decodeFrame", () => {
  it("accepts a well-formed delta", () => {
    const message = decodeFrame('{"type":"generation.delta","generation_id":"g","seq":1,"text":"Hi"}');
    expect(message).toEqual({ type: "generation.delta", generation_id: "g", seq: 1, text: "Hi" });
  });

  it("accepts conversation.updated with or without archived and deleted (older servers)", () => {
    const old = decodeFrame('{"type":"conversation.updated","conversation_id":"c","title":"T"}');
    expect(old).toEqual({ type: "conversation.updated", conversation_id: "c", title: "T" });
    const current = decodeFrame('{"type":"conversation.updated","conversation_id":"c","title":"T","archived":true,"deleted":false}');
    expect(current).toMatchObject({ archived: true, deleted: false });
  });

  it("tolerates fields added by a newer server", () => {
    const message = decodeFrame('{"type":"pong","server_time":123}');
    expect(message?.type).toBe("pong");
  });

  it.each([
    ["not JSON", "{nope"],
    ["a JSON array", "[1,2]"],
    ["a binary frame", new ArrayBuffer(4)],
    ["an unknown type", '{"type":"generation.teleport"}'],
    ["a delta without seq", '{"type":"generation.delta","generation_id":"g","text":"x"}'],
    ["a delta with seq 0", '{"type":"generation.delta","generation_id":"g","seq":0,"text":"x"}'],
    ["a delta with a fractional seq", '{"type":"generation.delta","generation_id":"g","seq":1.5,"text":"x"}'],
    ["a done without text", '{"type":"generation.done","generation_id":"g","finish_reason":"stop"}'],
    ["an error with a numeric message", '{"type":"error","code":"busy","message":5}'],
    ["a conversation.updated with a string archived", '{"type":"conversation.updated","conversation_id":"c","title":"T","archived":"yes"}'],
    ["a conversation.updated with a null deleted", '{"type":"conversation.updated","conversation_id":"c","title":"T","deleted":null}'],
  ])("drops %s", (_label, data) => {
    expect(decodeFrame(data)).toBeNull();
  });
});
