#include "io.hpp"

namespace uvaio::detail {

LoopImpl& io_loop(const char* method) {
  LoopImpl* loop = t_running_loop;
  if (loop == nullptr) throw RuntimeError("no running event loop");
  loop->check_usable(method);
  return *loop;
}

}  // namespace uvaio::detail
