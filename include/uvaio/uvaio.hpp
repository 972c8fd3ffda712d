#pragma once

// Everything uvaio offers, except <uvaio/log.hpp> (which includes spdlog).

#include "uvaio/async.hpp"
#include "uvaio/errors.hpp"
#include "uvaio/executor.hpp"
#include "uvaio/future.hpp"
#include "uvaio/gather.hpp"
#include "uvaio/handle.hpp"
#include "uvaio/loop.hpp"
#include "uvaio/outcome.hpp"
#include "uvaio/queue.hpp"
#include "uvaio/runner.hpp"
#include "uvaio/sleep.hpp"
#include "uvaio/sync.hpp"
#include "uvaio/task.hpp"
#include "uvaio/task_group.hpp"
#include "uvaio/to_thread.hpp"
#include "uvaio/version.hpp"
#include "uvaio/wait.hpp"
