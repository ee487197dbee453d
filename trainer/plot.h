// PNG plots drawn with cairo: line charts (eval's loss by position, a run's curves) and heatmaps (retrieval accuracy).
#pragma once
#include <string>
#include <vector>

namespace rt {

struct PlotSeries {
  std::string label;
  std::vector<double> x, y;  // (n) points, drawn in order; non-finite y values are skipped
};

struct LinePlot {
  std::string title, x_label, y_label;
  bool log_x = false;  // log2 x axis (positions, lengths)
  std::vector<PlotSeries> series;
};

// values[r][c] in [0, 1] (NaN: no value, drawn grey), r along y (y_ticks, top to bottom), c along x (x_ticks).
struct Heatmap {
  std::string title, x_label, y_label;
  std::vector<std::string> x_ticks, y_ticks;
  std::vector<std::vector<double>> values;
};

// Write the plot as a PNG file at `path`. Throws rt::UserError when the file cannot be written.
void plot_lines_png(const LinePlot& plot, const std::string& path);
void plot_heatmap_png(const Heatmap& map, const std::string& path);

}  // namespace rt
