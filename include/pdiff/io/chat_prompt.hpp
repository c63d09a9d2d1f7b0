// pdiff/io/chat_prompt.hpp — the text a FLUX.2 prompt becomes before the Mistral3 text encoder, and its
// padding to a fixed length, as diffusers' Flux2Pipeline._get_mistral_3_small_prompt_embeds does:
// format_input (the prompt without "[IMG]", a system turn) → apply_chat_template (Mistral-Small-3.x:
// "<s>[SYSTEM_PROMPT]" system "[/SYSTEM_PROMPT][INST]" prompt "[/INST]", no generation prompt) →
// tokenized without adding special tokens again → padding="max_length", truncation=True, max_length=512.
// | function                                  | result                                                |
// |-------------------------------------------|-------------------------------------------------------|
// | mistral3_chat_text(system, user, bos)     | the rendered chat template                            |
// | flux2_chat_text(prompt[, system, bos])    | the same with "[IMG]" removed and FLUX.2's system msg |
// | pad_ids(ids, pad_id, opts, ...)           | ids padded/truncated to max_length + attention mask   |
// | encode_flux2_prompt(tokenizer, prompt, o) | all of the above; PadOptions::strict makes a prompt   |
// |                                           | longer than max_length an Error naming both lengths   |
// | qwen3_chat_text(user, enable_thinking)    | Qwen3's chat template: one user turn + generation prompt |
// | encode_flux2_klein_prompt(tokenizer, p, o)| FLUX.2-klein (_get_qwen3_prompt_embeds): qwen3_chat_text(p, false) |
// |                                           | → tokens with the tokenizer's special tokens (none for Qwen) → padded |
// Padding and truncation side default to the tokenizer's (tokenizer_config.json; right if absent).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "pdiff/core/error.hpp"
#include "pdiff/io/tokenizer.hpp"

namespace pdiff {

// diffusers src/diffusers/pipelines/flux2/system_messages.py SYSTEM_MESSAGE (note the newline).
inline constexpr std::string_view flux2_system_message =
    "You are an AI that reasons about image descriptions. You give structured responses focusing on object "
    "relationships, object\nattribution and actions without speculation.";

inline std::string mistral3_chat_text(std::string_view system, std::string_view user, std::string_view bos = "<s>") {
  std::string s;
  s.reserve(bos.size() + system.size() + user.size() + 40);
  s.append(bos).append("[SYSTEM_PROMPT]").append(system).append("[/SYSTEM_PROMPT]");
  s.append("[INST]").append(user).append("[/INST]");
  return s;
}

inline std::string flux2_chat_text(std::string_view prompt, std::string_view system = flux2_system_message,
                                   std::string_view bos = "<s>") {
  std::string cleaned;  // format_input: prompt.replace("[IMG]", "")
  for (std::size_t i = 0; i < prompt.size();) {
    if (prompt.compare(i, 5, "[IMG]") == 0) {
      i += 5;
    } else {
      cleaned += prompt[i++];
    }
  }
  return mistral3_chat_text(system, cleaned, bos);
}

struct PaddedIds {
  std::vector<std::int32_t> ids;   // (max_length)
  std::vector<std::int32_t> mask;  // (max_length): 1 for a token, 0 for padding
  std::size_t length = 0;          // tokens before padding or truncation
};

struct PadOptions {
  std::size_t max_length = 512;
  std::optional<PadSide> padding_side;     // default: the tokenizer's
  std::optional<PadSide> truncation_side;  // default: the tokenizer's
  bool strict = false;                     // true: more than max_length tokens is an Error, not a truncation
};

inline PaddedIds pad_ids(std::vector<std::int32_t> ids, std::int32_t pad_id, std::size_t max_length, PadSide padding,
                         PadSide truncation, bool strict, std::string_view what) {
  PaddedIds out;
  out.length = ids.size();
  PDIFF_CHECK(!strict || ids.size() <= max_length, what, ": ", ids.size(), " tokens, more than max_length ", max_length,
              "; shorten the prompt or turn strict off to truncate as the reference does");
  if (ids.size() > max_length) {
    if (truncation == PadSide::right) ids.resize(max_length);
    else ids.erase(ids.begin(), ids.end() - std::ptrdiff_t(max_length));
  }
  std::size_t n = ids.size(), pad = max_length - n;
  out.ids.reserve(max_length);
  out.mask.reserve(max_length);
  if (padding == PadSide::left) out.ids.assign(pad, pad_id), out.mask.assign(pad, 0);
  out.ids.insert(out.ids.end(), ids.begin(), ids.end());
  out.mask.insert(out.mask.end(), n, 1);
  if (padding == PadSide::right) out.ids.insert(out.ids.end(), pad, pad_id), out.mask.insert(out.mask.end(), pad, 0);
  return out;
}

inline PaddedIds encode_flux2_prompt(const Tokenizer& tok, std::string_view prompt, const PadOptions& o = {},
                                     std::string_view system = flux2_system_message) {
  PDIFF_CHECK(o.max_length > 0, "encode_flux2_prompt: max_length must be positive");
  auto ids = tok.encode(flux2_chat_text(prompt, system, tok.bos_token()), /*add_special_tokens=*/false);
  return pad_ids(std::move(ids), tok.pad_id(), o.max_length, o.padding_side.value_or(tok.padding_side()),
                 o.truncation_side.value_or(tok.truncation_side()), o.strict,
                 "FLUX.2 prompt (chat-formatted, tokenized)");
}

// Qwen3's chat template for [{"role": "user", "content": user}] with add_generation_prompt=True:
// "<|im_start|>user\n" user "<|im_end|>\n<|im_start|>assistant\n", and with enable_thinking=False the
// empty think block "<think>\n\n</think>\n\n" after it.
inline std::string qwen3_chat_text(std::string_view user, bool enable_thinking = true) {
  std::string s;
  s.reserve(user.size() + 80);
  s.append("<|im_start|>user\n").append(user).append("<|im_end|>\n<|im_start|>assistant\n");
  if (!enable_thinking) s.append("<think>\n\n</think>\n\n");
  return s;
}

// Flux2KleinPipeline._get_qwen3_prompt_embeds: apply_chat_template(..., add_generation_prompt=True,
// enable_thinking=False), then tokenizer(text, padding="max_length", truncation=True, max_length)
// (add_special_tokens left on: the tokenizer's post-processor decides; Qwen's adds nothing).
inline PaddedIds encode_flux2_klein_prompt(const Tokenizer& tok, std::string_view prompt, const PadOptions& o = {}) {
  PDIFF_CHECK(o.max_length > 0, "encode_flux2_klein_prompt: max_length must be positive");
  auto ids = tok.encode(qwen3_chat_text(prompt, /*enable_thinking=*/false), /*add_special_tokens=*/true);
  return pad_ids(std::move(ids), tok.pad_id(), o.max_length, o.padding_side.value_or(tok.padding_side()),
                 o.truncation_side.value_or(tok.truncation_side()), o.strict,
                 "FLUX.2-klein prompt (Qwen3 chat-formatted, tokenized)");
}

}  // namespace pdiff
