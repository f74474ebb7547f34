#include "common/padding.h"

#include <stdexcept>
#include <string>

namespace convpool {

void validate_padding(PaddingMode mode, int64_t before, int64_t after, int64_t size,
                      const char* axis_name) {
  if (mode == PaddingMode::zeros || (before == 0 && after == 0)) return;
  const std::string axis = axis_name;
  if (size < 1)
    throw std::invalid_argument(axis + ": a padding mode other than zeros needs a non-empty input");
  if (mode == PaddingMode::replicate) return;
  // reflect: pad < size; symmetric and circular: pad <= size.
  const int64_t limit = mode == PaddingMode::reflect ? size - 1 : size;
  for (int64_t pad : {before, after})
    if (pad > limit)
      throw std::invalid_argument(axis + ": padding " + std::to_string(pad) +
                                  " is beyond what the padding mode can repeat of an input of " +
                                  std::to_string(size));
}

}  // namespace convpool
