#pragma once

// The operator's dashboard (GET / on the agent's --http endpoint): bin/http/dashboard.html, one
// self-contained page (its CSS and JavaScript inline, nothing fetched from elsewhere), compiled
// into the binary at build time (cmake/embed_file.cmake) so that the agent serves it alone.

#include <string_view>

namespace shoal::bin::http {

// The page's bytes, exactly as in bin/http/dashboard.html.
std::string_view dashboard_html();

}  // namespace shoal::bin::http
