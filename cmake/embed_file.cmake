# Run at build time (cmake -P): writes a .cpp that defines `std::string_view NAMESPACE::FUNCTION()`
# returning the bytes of the file SOURCE exactly, as an array of byte values (no escaping of the
# file's text can go wrong, whatever it holds). The header HEADER declares the function.
# Inputs: -DSOURCE=path -DOUTPUT=path.cpp -DHEADER=include/path.h -DNAMESPACE=a::b -DFUNCTION=name
foreach(var SOURCE OUTPUT HEADER NAMESPACE FUNCTION)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "embed_file.cmake: -D${var}=... is required")
  endif()
endforeach()
file(READ "${SOURCE}" hex HEX)
# One 0x.. per byte, 16 per line, then a terminating zero outside the returned view (an empty file
# still makes a valid array).
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REPEAT "0x[0-9a-f][0-9a-f]," 16 sixteen)
string(REGEX REPLACE "(${sixteen})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUTPUT}.tmp"
  "// Generated from ${SOURCE} by cmake/embed_file.cmake at build time; do not edit.\n"
  "#include \"${HEADER}\"\n\n"
  "namespace ${NAMESPACE} {\n\n"
  "namespace {\n"
  "constexpr unsigned char kBytes[] = {\n    ${bytes}0x00};\n"
  "}  // namespace\n\n"
  "std::string_view ${FUNCTION}() {\n"
  "  return {reinterpret_cast<const char*>(kBytes), sizeof kBytes - 1};\n"
  "}\n\n"
  "}  // namespace ${NAMESPACE}\n")
file(COPY_FILE "${OUTPUT}.tmp" "${OUTPUT}" ONLY_IF_DIFFERENT)
file(REMOVE "${OUTPUT}.tmp")
