# cmake -DINPUT=FILE -DOUTPUT=FILE.cpp -DSYMBOL=NAME -P EmbedFile.cmake
# Writes a C++ file defining `const unsigned char dsflow::NAME[]` with FILE's
# bytes and `const unsigned long dsflow::NAME_size`: machine code built with
# dsflow, carried inside the binary.
file(READ "${INPUT}" hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE "${OUTPUT}"
  "// Generated from ${INPUT} by cmake/EmbedFile.cmake.\n"
  "namespace dsflow {\n"
  "extern const unsigned char ${SYMBOL}[] = {${bytes}};\n"
  "extern const unsigned long ${SYMBOL}_size = sizeof(${SYMBOL});\n"
  "} // namespace dsflow\n")
