#include <iostream>

#include "client/commands.h"

namespace audiotag {

int RunBulkCommand(const std::vector<std::string>& args) {
  std::cerr << "audiotag bulk: not available in this build yet\n";
  return 2;
}

}  // namespace audiotag
