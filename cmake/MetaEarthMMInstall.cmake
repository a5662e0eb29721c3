# pkg-config files (libmm.pc, mmgeo.pc) and the CMake package MetaEarthMM (find_package), both
# relocatable: the .pc files name their prefix relative to their own directory (${pcfiledir}),
# the package its imported targets relative to itself. Included by the top-level CMakeLists.txt
# once the libraries are defined.
include(CMakePackageConfigHelpers)

# -l flags of a list of libraries (full paths or names) for pkg-config's Libs.private, with -L
# for a directory the linker does not search by itself
function(mm_pc_libs out)
  set(flags "")
  foreach(lib IN LISTS ARGN)
    if(lib MATCHES "^-")
      list(APPEND flags "${lib}")
    elseif(IS_ABSOLUTE "${lib}")
      get_filename_component(dir "${lib}" DIRECTORY)
      get_filename_component(name "${lib}" NAME_WE)
      string(REGEX REPLACE "^lib" "" name "${name}")
      list(FIND CMAKE_C_IMPLICIT_LINK_DIRECTORIES "${dir}" implicit)
      if(implicit LESS 0 AND NOT dir MATCHES "^/(usr/)?lib(64)?(/|$)")
        list(APPEND flags "-L${dir}")
      endif()
      list(APPEND flags "-l${name}")
    else()
      list(APPEND flags "-l${lib}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES flags)
  list(JOIN flags " " flags)
  set(${out} "${flags}" PARENT_SCOPE)
endfunction()

if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(MM_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(MM_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  file(RELATIVE_PATH mm_pc_up "${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig" "${CMAKE_INSTALL_PREFIX}")
  string(REGEX REPLACE "/$" "" mm_pc_up "${mm_pc_up}")
  set(MM_PC_PREFIX "\${pcfiledir}/${mm_pc_up}")
  set(MM_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(MM_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(MM_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()

# libmm: cJSON through its own .pc; oneDNN, OpenMP's runtime, libm (and the CUDA backend when
# built) as flags. Only a static link (pkg-config --static, libmm.a) needs them.
set(mm_private "")
if(MM_HAVE_CUDA)
  list(APPEND mm_private -lmm_cuda ${MM_CUDA_PC_LIBS} -lstdc++ -lpthread) # kernels/
endif()
list(APPEND mm_private "${DNNL_LIBRARY}")
foreach(l IN LISTS OpenMP_C_LIB_NAMES)
  list(APPEND mm_private "${l}")
endforeach()
list(APPEND mm_private m)
mm_pc_libs(MM_PC_LIBS_PRIVATE ${mm_private})
configure_file(${CMAKE_CURRENT_LIST_DIR}/libmm.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/libmm.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/libmm.pc
        DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(MM_HAVE_GDAL)
  mm_pc_libs(MMGEO_PC_LIBS_PRIVATE m pthread)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/mmgeo.pc.in ${PROJECT_BINARY_DIR}/pkgconfig/mmgeo.pc
                 @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/pkgconfig/mmgeo.pc
          DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
endif()

# the CMake package: MetaEarthMM::mm, MetaEarthMM::mmgeo (shared), MetaEarthMM::mmsim
install(EXPORT MetaEarthMMTargets NAMESPACE MetaEarthMM:: DESTINATION ${MM_INSTALL_CMAKEDIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/MetaEarthMMConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/MetaEarthMMConfig.cmake
  INSTALL_DESTINATION ${MM_INSTALL_CMAKEDIR} PATH_VARS MM_INSTALL_DATADIR)
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/MetaEarthMMConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/MetaEarthMMConfig.cmake
              ${PROJECT_BINARY_DIR}/cmake/MetaEarthMMConfigVersion.cmake
        DESTINATION ${MM_INSTALL_CMAKEDIR})
