#pragma once
// Forward declarations of the two Asio types that appear in cairn's public
// headers (the clock's timers, the p2p layer, the chain client), so that
// including one does not pull in Asio. Asio's own headers are included only
// by .cpp files of p2p/, contracts/ (the chain client), tools/, bench/ and
// tests.
//
// An executor is passed by const reference and copied inside the library.
// When the io_context runs on more than one thread, pass a strand
// (asio::make_strand(ctx)) converted to asio::any_io_executor: everything a
// Host owns then runs serialised on that strand. A caller that passes
// ctx.get_executor() or a strand includes <asio/any_io_executor.hpp> so the
// conversion to asio::any_io_executor is visible.

namespace asio {
class any_io_executor;
class io_context;
}  // namespace asio
