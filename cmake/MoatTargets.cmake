# Flags and helpers every Moat target uses. Targets opt in with moat_target();
# nothing here sets global flags.

add_library(moat_flags INTERFACE)
target_compile_definitions(moat_flags INTERFACE _GNU_SOURCE)
target_compile_options(moat_flags INTERFACE
	-Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes
	-Wformat=2 -Wvla)
if(MOAT_WERROR)
	target_compile_options(moat_flags INTERFACE -Werror)
endif()
if(MOAT_SANITIZE)
	target_compile_options(moat_flags INTERFACE
		-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer)
	target_link_options(moat_flags INTERFACE -fsanitize=address,undefined)
endif()
if(CMAKE_BUILD_TYPE STREQUAL "Release")
	target_compile_definitions(moat_flags INTERFACE _FORTIFY_SOURCE=3)
	target_compile_options(moat_flags INTERFACE -fstack-protector-strong)
	target_link_options(moat_flags INTERFACE -Wl,-z,relro,-z,now -pie)
endif()

# moat_target(<target> [CONVERSION]): applies the project's flags;
# CONVERSION adds -Wconversion (codec/ and crypto/).
function(moat_target target)
	cmake_parse_arguments(ARG "CONVERSION" "" "" ${ARGN})
	target_link_libraries(${target} PRIVATE moat_flags)
	if(ARG_CONVERSION)
		target_compile_options(${target} PRIVATE -Wconversion)
	endif()
endfunction()

# moat_unit_test(<name> SOURCES <files...> LIBS <targets...>): one cmocka
# executable registered with CTest under the "unit" label.
function(moat_unit_test name)
	cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
	add_executable(${name} ${ARG_SOURCES})
	target_link_libraries(${name} PRIVATE ${ARG_LIBS} PkgConfig::CMOCKA)
	moat_target(${name})
	set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
	add_test(NAME unit.${name} COMMAND ${name})
	set_tests_properties(unit.${name} PROPERTIES LABELS unit TIMEOUT 120)
endfunction()

if(MOAT_TESTS)
	find_package(PkgConfig REQUIRED)
	pkg_check_modules(CMOCKA REQUIRED IMPORTED_TARGET cmocka)
endif()
