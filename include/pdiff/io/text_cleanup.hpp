// pdiff/io/text_cleanup.hpp — clean_up_tokenization(text): transformers' decode(...,
// clean_up_tokenization_spaces=True) post-processing, which removes the space a word-piece
// tokenizer leaves before punctuation and English contractions:
//   " ." " ?" " !" " ," → "." "?" "!" ","   " ' " → "'"   " n't" " 'm" " 's" " 've" " 're" → without the space
// Applied in this order, each over the whole string, as transformers' clean_up_tokenization does.
#pragma once

#include <string>
#include <string_view>
#include <utility>

namespace pdiff {

inline std::string clean_up_tokenization(std::string s) {
  static constexpr std::pair<std::string_view, std::string_view> rules[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"},
      {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (auto [from, to] : rules) {
    std::string out;
    out.reserve(s.size());
    std::size_t i = 0;
    for (std::size_t at; (at = s.find(from, i)) != std::string::npos; i = at + from.size()) out.append(s, i, at - i).append(to);
    out.append(s, i, std::string::npos);
    s = std::move(out);
  }
  return s;
}

}  // namespace pdiff
