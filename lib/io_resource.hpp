#pragma once

// A libuv handle owner registered with its loop (see io.hpp).

namespace uvaio::detail {

class IoResource {
 public:
  // The loop is closing: uv_close() every handle with a callback that frees
  // what it must, and unregister. Pending futures need not be settled (the
  // loop drops their waiters), but may be.
  virtual void close_for_loop() noexcept = 0;

  IoResource* prev_io_ = nullptr;
  IoResource* next_io_ = nullptr;

 protected:
  IoResource() = default;
  IoResource(const IoResource&) = delete;
  IoResource& operator=(const IoResource&) = delete;
  virtual ~IoResource() = default;
};

}  // namespace uvaio::detail
