#pragma once

// The pieces every I/O wrapper shares (lib/ only, never installed).
//
// Handles. A libuv handle lives until its close callback has run (uvw's rule),
// so the object that embeds it is freed there and nowhere else. Each such
// object is an IoResource registered with its loop while its handles are open:
// Loop::close() calls close_for_loop() on every one of them before it closes
// the handles it does not know (which it closes with a null callback, and
// whose memory it therefore cannot free). close_for_loop() must uv_close() the
// resource's handles with its own callbacks and unregister it.
//
// Requests. A uv_fs_t / uv_getaddrinfo_t / uv_connect_t ... completes exactly
// once, even when cancelled or when the loop closes (libuv then reports
// UV_ECANCELED). RequestOp<T, Req> is the request and the future it settles in
// one block, reference counted like any future: the callers' handles hold it,
// and libuv holds one reference from submission until the callback ran, so
// neither side frees memory the other still uses.

#include <exception>
#include <string>
#include <utility>

#include <uv.h>

#include "io_resource.hpp"
#include "loop_impl.hpp"
#include "uvaio/errors.hpp"
#include "uvaio/future.hpp"

namespace uvaio::detail {

// The running loop's LoopImpl for an I/O call; RuntimeError("no running event
// loop") outside one, and the usual checks (closed loop, debug-mode thread).
LoopImpl& io_loop(const char* method);

// A request whose completion settles a Future<T>. Use:
//   auto* op = new RequestOp<T, uv_fs_t>(loop);
//   Future<T> future(adopt, op);                 // the caller's reference
//   op->what = "open '" + path + "'";           // names the failure
//   op->start(uv_fs_open(&loop.uv_, &op->req, path, flags, mode, cb));
// and in the callback (a plain function getting the request back):
//   auto* op = RequestOp<T, uv_fs_t>::from(req);
//   if (op->deliverable()) { ... op->set_value(v) or op->fail(code, op->what) }
//   op->finished();                              // libuv's reference goes
// Cancelling the future (the awaiting task being cancelled) calls uv_cancel(),
// which stops requests that have not started (fs, getaddrinfo, work); a request
// that cannot be stopped completes later and its result is dropped.
template <class T, class Req>
class RequestOp final : public FutureState<T> {
 public:
  explicit RequestOp(LoopImpl& loop) : FutureState<T>(&loop) { req.data = this; }

  static RequestOp* from(Req* r) noexcept { return static_cast<RequestOp*>(r->data); }

  // rc is what the uv_* submission returned: on success libuv holds the
  // request until its callback; on failure the future fails at once.
  void start(int rc) noexcept {
    if (rc < 0) {
      fail(rc, what);
      return;
    }
    in_uv_ = true;
    this->add_ref();
  }
  // Whether a completion should be stored: the future is still pending and
  // the loop is not closing.
  bool deliverable() const noexcept {
    return !this->done() && this->loop() != nullptr && !this->loop()->closing();
  }
  template <class... U>
  void set_value(U&&... value) noexcept {
    try {
      this->value_.emplace(std::forward<U>(value)...);
      this->mark_result_set();
    } catch (...) {
      this->set_exception_unchecked(std::current_exception());
    }
  }
  void fail(int code, const std::string& what) noexcept {
    if (this->done()) return;
    try {
      this->set_exception_unchecked(make_uv_error(code, what));
    } catch (...) {
      this->set_exception_unchecked(std::current_exception());
    }
  }
  void fail(std::exception_ptr error) noexcept {
    if (!this->done()) this->set_exception_unchecked(std::move(error));
  }
  // Called once from libuv's callback, last: libuv's reference goes. A
  // future still pending here (the loop is closing) ends cancelled, as the
  // executors' futures do.
  void finished() noexcept {
    if (!this->done()) this->set_cancelled_unchecked("the event loop was closed while the request was pending");
    in_uv_ = false;
    this->release();
  }

  Req req{};
  // What failed, for the error's message ("open '/tmp/x'").
  std::string what;

 private:
  void on_cancelled() noexcept override {
    if (in_uv_) uv_cancel(reinterpret_cast<uv_req_t*>(&req));
  }
  bool in_uv_ = false;
};

}  // namespace uvaio::detail
