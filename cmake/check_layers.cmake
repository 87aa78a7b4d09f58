# The layering the build enforces: no library of the engine (src/) may link
# gRPC, directly or through another target. proto/ keeps the message classes
# (audiotag_proto, protobuf only) apart from the gRPC services
# (audiotag_grpc_services); src/ links the first, server/ and client/ the
# second. A violation fails the configure step, naming the chain of targets.
#
#   audiotag_check_no_grpc(<source folder>)   checks every target defined in
#                                              that folder and its subfolders

# Targets defined in `dir` and the folders below it.
function(_audiotag_targets_under dir out)
  get_property(targets DIRECTORY ${dir} PROPERTY BUILDSYSTEM_TARGETS)
  get_property(subdirs DIRECTORY ${dir} PROPERTY SUBDIRECTORIES)
  foreach(sub IN LISTS subdirs)
    _audiotag_targets_under(${sub} sub_targets)
    list(APPEND targets ${sub_targets})
  endforeach()
  set(${out} ${targets} PARENT_SCOPE)
endfunction()

# Whether a target named `item` is gRPC's or the generated services library.
function(_audiotag_is_grpc item out)
  if(item MATCHES "^gRPC::" OR item STREQUAL "audiotag_grpc_services")
    set(${out} TRUE PARENT_SCOPE)
  else()
    set(${out} FALSE PARENT_SCOPE)
  endif()
endfunction()

# Depth-first over the targets `target` links; sets `out` to the chain
# "a -> b -> gRPC::grpc++" of the first path reaching gRPC, or "".
# `visited` is the name of a list in the caller's scope.
function(_audiotag_find_grpc target chain visited out)
  set(${out} "" PARENT_SCOPE)
  set(seen ${${visited}})
  get_target_property(type ${target} TYPE)
  set(links "")
  if(type STREQUAL "UTILITY")
    set(${visited} ${seen} PARENT_SCOPE)
    return()
  endif()
  if(NOT type STREQUAL "INTERFACE_LIBRARY")
    get_target_property(direct ${target} LINK_LIBRARIES)
    if(direct)
      list(APPEND links ${direct})
    endif()
  endif()
  get_target_property(interface ${target} INTERFACE_LINK_LIBRARIES)
  if(interface)
    list(APPEND links ${interface})
  endif()
  foreach(item IN LISTS links)
    # $<LINK_ONLY:x> is how static libraries pass on private dependencies.
    string(REGEX REPLACE "^\\$<LINK_ONLY:(.*)>$" "\\1" item "${item}")
    if(item MATCHES "^\\$<" OR NOT TARGET ${item})
      continue()
    endif()
    get_target_property(aliased ${item} ALIASED_TARGET)
    if(aliased)
      set(item ${aliased})
    endif()
    _audiotag_is_grpc(${item} is_grpc)
    if(is_grpc)
      set(${out} "${chain} -> ${item}" PARENT_SCOPE)
      set(${visited} ${seen} PARENT_SCOPE)
      return()
    endif()
    if(item IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${item})
    _audiotag_find_grpc(${item} "${chain} -> ${item}" seen found)
    if(found)
      set(${out} "${found}" PARENT_SCOPE)
      set(${visited} ${seen} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  set(${visited} ${seen} PARENT_SCOPE)
endfunction()

function(audiotag_check_no_grpc dir)
  _audiotag_targets_under(${dir} targets)
  set(clean "")
  foreach(target IN LISTS targets)
    set(visited ${clean})
    _audiotag_find_grpc(${target} ${target} visited chain)
    if(chain)
      message(FATAL_ERROR
        "Layering: ${target} (in ${dir}) links gRPC: ${chain}. The engine "
        "links audiotag_proto (messages only); gRPC belongs to server/ and "
        "client/ (proto/CMakeLists.txt).")
    endif()
    # Everything reached from a clean target is clean.
    set(clean ${visited})
  endforeach()
endfunction()
