// PNG plots with cairo: axes with ticks and labels, one polyline per series with a legend, and heatmap cells.
#include "trainer/plot.h"

#include <cairo.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <memory>

#include "core/check.h"

namespace rt {
namespace {

constexpr int kWidth = 900, kHeight = 560;
constexpr double kLeft = 90, kRight = 30, kTop = 50, kBottom = 70;  // plot area margins (pixels)

struct Rgb {
  double r, g, b;
};
constexpr Rgb kPalette[] = {{0.12, 0.47, 0.71}, {1.0, 0.5, 0.05},  {0.17, 0.63, 0.17},
                            {0.84, 0.15, 0.16}, {0.58, 0.4, 0.74}, {0.55, 0.34, 0.29}};

using Surface = std::unique_ptr<cairo_surface_t, decltype(&cairo_surface_destroy)>;
using Context = std::unique_ptr<cairo_t, decltype(&cairo_destroy)>;

struct Canvas {
  Surface surface{cairo_image_surface_create(CAIRO_FORMAT_RGB24, kWidth, kHeight), &cairo_surface_destroy};
  Context cr{cairo_create(surface.get()), &cairo_destroy};
  Canvas() {
    cairo_set_source_rgb(cr.get(), 1, 1, 1);
    cairo_paint(cr.get());
    cairo_select_font_face(cr.get(), "DejaVu Sans", CAIRO_FONT_SLANT_NORMAL, CAIRO_FONT_WEIGHT_NORMAL);
  }
  // Text at (x, y): anchored by its horizontal fraction ax (0 left, 0.5 centre, 1 right), vertically centred.
  void text(const std::string& s, double x, double y, double size, double ax = 0.5, bool vertical = false) {
    cairo_t* c = cr.get();
    cairo_set_font_size(c, size);
    cairo_text_extents_t e;
    cairo_text_extents(c, s.c_str(), &e);
    cairo_save(c);
    cairo_translate(c, x, y);
    if (vertical) cairo_rotate(c, -M_PI / 2);
    cairo_move_to(c, -ax * e.width - e.x_bearing, -e.height / 2 - e.y_bearing);
    cairo_set_source_rgb(c, 0.1, 0.1, 0.1);
    cairo_show_text(c, s.c_str());
    cairo_restore(c);
  }
  void save(const std::string& path) {
    cairo_surface_flush(surface.get());
    if (cairo_surface_write_to_png(surface.get(), path.c_str()) != CAIRO_STATUS_SUCCESS)
      throw UserError("cannot write the plot '" + path + "'; give a writable path");
  }
};

std::string number(double v) {
  char buf[32];
  if (std::abs(v) < 1e-12) v = 0;  // a tick at 0 computed as -1e-17
  const double a = std::abs(v);
  if (a != 0 && (a >= 1e5 || a < 1e-2))
    std::snprintf(buf, sizeof buf, "%.0e", v);
  else
    std::snprintf(buf, sizeof buf, "%g", std::round(v * 1000) / 1000);
  return buf;
}

// About five "nice" tick values (1, 2, 5 x 10^k steps) covering [lo, hi].
std::vector<double> nice_ticks(double lo, double hi) {
  const double span = hi - lo, raw = span / 5, mag = std::pow(10, std::floor(std::log10(raw)));
  const double step = raw / mag >= 5 ? 5 * mag : raw / mag >= 2 ? 2 * mag : mag;
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + 1e-9 * span; t += step) ticks.push_back(t);
  return ticks;
}

}  // namespace

void plot_lines_png(const LinePlot& plot, const std::string& path) {
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  auto tx = [&](double x) { return plot.log_x ? std::log2(std::max(x, 1e-300)) : x; };
  for (const PlotSeries& s : plot.series)
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (plot.log_x && s.x[i] <= 0)) continue;
      x0 = std::min(x0, tx(s.x[i])), x1 = std::max(x1, tx(s.x[i]));
      y0 = std::min(y0, s.y[i]), y1 = std::max(y1, s.y[i]);
    }
  if (!std::isfinite(x0)) x0 = 0, x1 = 1, y0 = 0, y1 = 1;  // nothing to draw: empty axes
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0) y0 -= 0.5, y1 += 0.5;
  const double pad = 0.05 * (y1 - y0);
  y0 -= pad, y1 += pad;
  const double w = kWidth - kLeft - kRight, h = kHeight - kTop - kBottom;
  auto px = [&](double x) { return kLeft + (tx(x) - x0) / (x1 - x0) * w; };
  auto py = [&](double y) { return kTop + (y1 - y) / (y1 - y0) * h; };

  Canvas canvas;
  cairo_t* c = canvas.cr.get();
  cairo_set_line_width(c, 1);
  cairo_set_source_rgb(c, 0.85, 0.85, 0.85);
  const std::vector<double> yt = nice_ticks(y0, y1);
  for (double t : yt) cairo_move_to(c, kLeft, py(t)), cairo_line_to(c, kLeft + w, py(t));
  cairo_stroke(c);
  cairo_set_source_rgb(c, 0.2, 0.2, 0.2);
  cairo_rectangle(c, kLeft, kTop, w, h);
  cairo_stroke(c);
  for (double t : yt) canvas.text(number(t), kLeft - 8, py(t), 12, 1);
  if (plot.log_x) {
    for (double e = std::ceil(x0); e <= x1 + 1e-9; e += std::max(1.0, std::ceil((x1 - x0) / 10)))
      canvas.text(number(std::exp2(e)), kLeft + (e - x0) / (x1 - x0) * w, kTop + h + 14, 12);
  } else {
    for (double t : nice_ticks(x0, x1)) canvas.text(number(t), kLeft + (t - x0) / (x1 - x0) * w, kTop + h + 14, 12);
  }
  canvas.text(plot.title, kWidth / 2.0, kTop / 2, 16);
  canvas.text(plot.x_label, kLeft + w / 2, kHeight - 22, 13);
  canvas.text(plot.y_label, 22, kTop + h / 2, 13, 0.5, true);

  for (size_t k = 0; k < plot.series.size(); ++k) {
    const PlotSeries& s = plot.series[k];
    const Rgb col = kPalette[k % std::size(kPalette)];
    cairo_set_source_rgb(c, col.r, col.g, col.b);
    cairo_set_line_width(c, 2);
    bool pen = false;
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
      if (!std::isfinite(s.y[i]) || (plot.log_x && s.x[i] <= 0)) {
        pen = false;
        continue;
      }
      if (pen)
        cairo_line_to(c, px(s.x[i]), py(s.y[i]));
      else
        cairo_move_to(c, px(s.x[i]), py(s.y[i]));
      pen = true;
    }
    cairo_stroke(c);
    for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i)
      if (std::isfinite(s.y[i]) && !(plot.log_x && s.x[i] <= 0)) {
        cairo_arc(c, px(s.x[i]), py(s.y[i]), 3, 0, 2 * M_PI);
        cairo_fill(c);
      }
    if (!s.label.empty()) {  // legend, top right
      const double ly = kTop + 16 + 18 * static_cast<double>(k);
      cairo_rectangle(c, kLeft + w - 180, ly - 5, 22, 10);
      cairo_fill(c);
      canvas.text(s.label, kLeft + w - 150, ly, 12, 0);
    }
  }
  canvas.save(path);
}

void plot_heatmap_png(const Heatmap& map, const std::string& path) {
  const size_t rows = map.values.size(), cols = rows ? map.values[0].size() : 0;
  RT_CHECK(rows == map.y_ticks.size() && cols == map.x_ticks.size(), "heatmap ticks do not match its values");
  Canvas canvas;
  cairo_t* c = canvas.cr.get();
  const double w = kWidth - kLeft - kRight - 70, h = kHeight - kTop - kBottom;  // 70: the colour bar
  const double cw = cols ? w / static_cast<double>(cols) : w, ch = rows ? h / static_cast<double>(rows) : h;
  // Colour of v in [0, 1]: red (0) through yellow to green (1).
  auto colour = [&](double v) {
    if (!std::isfinite(v)) return Rgb{0.8, 0.8, 0.8};
    v = std::clamp(v, 0.0, 1.0);
    return v < 0.5 ? Rgb{0.85, 0.2 + 1.3 * v, 0.15} : Rgb{0.85 - 1.5 * (v - 0.5), 0.85, 0.15};
  };
  for (size_t r = 0; r < rows; ++r)
    for (size_t k = 0; k < cols; ++k) {
      const double v = map.values[r][k];
      const Rgb col = colour(v);
      cairo_set_source_rgb(c, col.r, col.g, col.b);
      cairo_rectangle(c, kLeft + static_cast<double>(k) * cw, kTop + static_cast<double>(r) * ch, cw - 1, ch - 1);
      cairo_fill(c);
      if (std::isfinite(v) && cw > 34 && ch > 14)
        canvas.text(std::to_string(static_cast<int>(std::lround(100 * v))), kLeft + (static_cast<double>(k) + 0.5) * cw,
                    kTop + (static_cast<double>(r) + 0.5) * ch, 11);
    }
  for (size_t k = 0; k < cols; ++k)
    canvas.text(map.x_ticks[k], kLeft + (static_cast<double>(k) + 0.5) * cw, kTop + h + 14, 11);
  for (size_t r = 0; r < rows; ++r)
    canvas.text(map.y_ticks[r], kLeft - 8, kTop + (static_cast<double>(r) + 0.5) * ch, 11, 1);
  for (int i = 0; i <= 10; ++i) {  // colour bar: 0% at the bottom, 100% at the top
    const Rgb col = colour(i / 10.0);
    cairo_set_source_rgb(c, col.r, col.g, col.b);
    cairo_rectangle(c, kLeft + w + 30, kTop + h - (i + 1) * h / 11, 18, h / 11);
    cairo_fill(c);
  }
  canvas.text("100%", kLeft + w + 39, kTop - 10, 11);
  canvas.text("0%", kLeft + w + 39, kTop + h + 10, 11);
  canvas.text(map.title, kWidth / 2.0, kTop / 2, 16);
  canvas.text(map.x_label, kLeft + w / 2, kHeight - 22, 13);
  canvas.text(map.y_label, 22, kTop + h / 2, 13, 0.5, true);
  canvas.save(path);
}

}  // namespace rt
