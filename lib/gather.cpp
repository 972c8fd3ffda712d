#include "uvaio/gather.hpp"

#include <utility>

#include "uvaio/detail/wait_set.hpp"

namespace uvaio::detail {

Async<void> gather_wait(std::vector<FutureCore*> children, std::vector<char> owned, bool settle) {
  if (settle) {
    WaitSet all(children, WaitSet::Until::all_completed, WaitSet::OnCancel::cancel_children_and_wait);
    co_await all;
    co_return;
  }
  WaitSet first(children, WaitSet::Until::first_failure, WaitSet::OnCancel::cancel_children_and_wait);
  co_await first;
  const std::optional<std::size_t> failed = first.first_failure();
  if (!failed) co_return;
  // The siblings only this gather can reach are cancelled and awaited, so that
  // nothing it started outlives it.
  std::vector<FutureCore*> running;
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (owned[i] != 0 && !children[i]->done()) {
      children[i]->cancel("a sibling in gather() failed");
      running.push_back(children[i]);
    }
  }
  if (!running.empty()) {
    WaitSet rest(std::move(running), WaitSet::Until::all_completed, WaitSet::OnCancel::cancel_children_and_wait);
    co_await rest;
  }
  // The other failures are this gather's to report: it reports the first.
  for (std::size_t i = 0; i < children.size(); ++i) {
    if (i != *failed && children[i]->status() == FutureStatus::exception) (void)children[i]->exception();
  }
  children[*failed]->check_result();
}

}  // namespace uvaio::detail
