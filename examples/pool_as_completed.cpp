// concurrent.futures' best-known idiom: submit every call, key the futures by
// what they are for, and handle each result as it comes in.
//
//   with ThreadPoolExecutor(max_workers=5) as executor:
//       future_to_url = {executor.submit(load_url, url, 60): url for url in URLS}
//       for future in as_completed(future_to_url):
//           url = future_to_url[future]
//           try:
//               data = future.result()
//           except Exception as exc:
//               print('%r generated an exception: %s' % (url, exc))
//           else:
//               print('%r page is %d bytes' % (url, len(data)))

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <uvaio/uvaio.hpp>

using namespace std::chrono_literals;

// Stands in for a blocking download: it waits, then returns a page or throws.
std::string load_url(const std::string& url, std::chrono::milliseconds latency) {
  std::this_thread::sleep_for(latency);
  if (url.find("nonexistent") != std::string::npos) throw std::runtime_error("Name or service not known");
  return std::string(url.size() * 100, 'x');
}

int main() {
  const std::vector<std::string> urls = {
      "http://www.foxnews.com/",
      "http://www.cnn.com/",
      "http://europe.wsj.com/",
      "http://www.bbc.co.uk/",
      "http://nonexistent-subdomain.python.org/",
  };
  int pages = 0;
  int failures = 0;

  // [snippet:as_completed]
  uvaio::ThreadPoolExecutor executor({.max_workers = 5});
  // A ThreadFuture hashes and compares by its shared state, so it can key a map.
  std::unordered_map<uvaio::ThreadFuture<std::string>, std::string> future_to_url;
  std::vector<uvaio::ThreadFuture<std::string>> futures;
  for (std::size_t i = 0; i < urls.size(); ++i) {
    const auto latency = std::chrono::milliseconds(10 * ((i * 3) % 5));
    uvaio::ThreadFuture<std::string> future = executor.submit(load_url, urls[i], latency);
    future_to_url.emplace(future, urls[i]);
    futures.push_back(future);
  }
  // Each future as it completes; the loop body blocks this thread in between.
  for (const uvaio::ThreadFuture<std::string>& future : uvaio::futures::as_completed(futures, 60s)) {
    const std::string& url = future_to_url.at(future);
    try {
      const std::string& data = future.result();
      std::printf("'%s' page is %zu bytes\n", url.c_str(), data.size());
      ++pages;
    } catch (const std::exception& exc) {
      std::printf("'%s' generated an exception: %s\n", url.c_str(), exc.what());
      ++failures;
    }
  }
  // [end]

  return pages == 4 && failures == 1 ? 0 : 1;
}
