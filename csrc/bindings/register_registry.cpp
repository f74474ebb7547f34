// The geometry values the Python layer resolves (convpool.geometry) and hands to every
// kernel binding, and the kernel registry (registry/registry.h): list, force and count
// implementations, and ask which would run a case.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>

#include "common/geometry.h"
#include "pool/pool2d.h"
#include "registry/implementation.h"
#include "registry/registry.h"

namespace convpool::bindings {

namespace py = pybind11;

void register_registry(py::module_& m) {
  using namespace py::literals;
  py::class_<WindowAxis>(m, "WindowAxis", "One spatial axis of a sliding-window operation.")
      .def(py::init([](int64_t in_size, int64_t out_size, int64_t kernel, int64_t stride,
                       int64_t dilation, int64_t pad_before, int64_t pad_after) {
             return WindowAxis{in_size, out_size, kernel, stride, dilation, pad_before, pad_after};
           }),
           "in_size"_a, "out_size"_a, "kernel"_a, "stride"_a, "dilation"_a, "pad_before"_a,
           "pad_after"_a)
      .def_readonly("in_size", &WindowAxis::in_size)
      .def_readonly("out_size", &WindowAxis::out_size)
      .def_readonly("kernel", &WindowAxis::kernel)
      .def_readonly("stride", &WindowAxis::stride)
      .def_readonly("dilation", &WindowAxis::dilation)
      .def_readonly("pad_before", &WindowAxis::pad_before)
      .def_readonly("pad_after", &WindowAxis::pad_after);
  py::enum_<PaddingMode>(m, "PaddingMode", "What padded pixels hold (padding_mode).")
      .value("zeros", PaddingMode::zeros)
      .value("replicate", PaddingMode::replicate)
      .value("reflect", PaddingMode::reflect)
      .value("symmetric", PaddingMode::symmetric)
      .value("circular", PaddingMode::circular);
  py::class_<Conv2dGeometry>(m, "Conv2dGeometry", "A convolution's resolved geometry.")
      .def(py::init([](int64_t batch, int64_t in_channels, int64_t out_channels, int64_t groups,
                       const WindowAxis& rows, const WindowAxis& cols, PaddingMode padding_mode,
                       bool channels_last) {
             return Conv2dGeometry{batch, in_channels, out_channels, groups, rows, cols,
                                   padding_mode, channels_last};
           }),
           "batch"_a, "in_channels"_a, "out_channels"_a, "groups"_a, "rows"_a, "cols"_a,
           "padding_mode"_a = PaddingMode::zeros, "channels_last"_a = false)
      .def_readonly("batch", &Conv2dGeometry::batch)
      .def_readonly("in_channels", &Conv2dGeometry::in_channels)
      .def_readonly("out_channels", &Conv2dGeometry::out_channels)
      .def_readonly("groups", &Conv2dGeometry::groups)
      .def_readonly("rows", &Conv2dGeometry::rows)
      .def_readonly("cols", &Conv2dGeometry::cols)
      .def_readonly("padding_mode", &Conv2dGeometry::padding_mode)
      .def_readonly("channels_last", &Conv2dGeometry::channels_last);
  py::class_<PoolGeometry>(m, "PoolGeometry", "A windowed pooling's resolved geometry.")
      .def(py::init([](int64_t planes, const WindowAxis& rows, const WindowAxis& cols,
                       bool channels_last, int64_t channels) {
             PoolGeometry g{planes, rows, cols};
             g.channels_last = channels_last;
             g.channels = channels;
             return g;
           }),
           "planes"_a, "rows"_a, "cols"_a, "channels_last"_a = false, "channels"_a = 1)
      .def_readonly("planes", &PoolGeometry::planes)
      .def_readonly("rows", &PoolGeometry::rows)
      .def_readonly("cols", &PoolGeometry::cols)
      .def_readonly("channels_last", &PoolGeometry::channels_last)
      .def_readonly("channels", &PoolGeometry::channels);
  py::class_<GlobalPoolShape>(m, "GlobalPoolShape", "Global pooling's planes.")
      .def(py::init([](int64_t planes, int64_t plane_size, bool channels_last, int64_t channels) {
             return GlobalPoolShape{planes, plane_size, channels_last, channels};
           }),
           "planes"_a, "plane_size"_a, "channels_last"_a = false, "channels"_a = 1);
  py::class_<ChannelPoolShape>(m, "ChannelPoolShape", "Channel pooling's shape.")
      .def(py::init([](int64_t batch, int64_t channels, int64_t group, int64_t plane_size,
                       bool channels_last) {
             return ChannelPoolShape{batch, channels, group, plane_size, channels_last};
           }),
           "batch"_a, "channels"_a, "group"_a, "plane_size"_a, "channels_last"_a = false);

  m.def("operations", &registry::operations);
  m.def("implementations", &registry::implementation_names, "op"_a);
  m.def("force_implementation", &registry::force_implementation, "op"_a, "name"_a);
  m.def("forced_implementation", &registry::forced_implementation, "op"_a);
  m.def("implementation_runs", &registry::runs, "op"_a, "name"_a, "dtype"_a = "");
  m.def("supporting_implementations",
        py::overload_cast<const std::string&, const std::string&, const Conv2dGeometry&>(&registry::supporting),
        "op"_a, "dtype"_a, "problem"_a);
  m.def("supporting_implementations",
        py::overload_cast<const std::string&, const std::string&, const PoolGeometry&>(&registry::supporting),
        "op"_a, "dtype"_a, "problem"_a);
  m.def("supporting_implementations",
        py::overload_cast<const std::string&, const std::string&, const GlobalPoolShape&>(&registry::supporting),
        "op"_a, "dtype"_a, "problem"_a);
  m.def("supporting_implementations",
        py::overload_cast<const std::string&, const std::string&, const ChannelPoolShape&>(&registry::supporting),
        "op"_a, "dtype"_a, "problem"_a);
  m.def("chosen_implementation",
        py::overload_cast<const std::string&, const std::string&, const Conv2dGeometry&>(&registry::chosen),
        "op"_a, "dtype"_a, "problem"_a);
  m.def("chosen_implementation",
        py::overload_cast<const std::string&, const std::string&, const PoolGeometry&>(&registry::chosen),
        "op"_a, "dtype"_a, "problem"_a);
  m.def("chosen_implementation",
        py::overload_cast<const std::string&, const std::string&, const GlobalPoolShape&>(&registry::chosen),
        "op"_a, "dtype"_a, "problem"_a);
  m.def("chosen_implementation",
        py::overload_cast<const std::string&, const std::string&, const ChannelPoolShape&>(&registry::chosen),
        "op"_a, "dtype"_a, "problem"_a);
}

}  // namespace convpool::bindings
