//===- TimelineSvg.cpp - Rows of coloured, numbered cells -----------------===//
#include "Schedule/TimelineSvg.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace dsflow::schedule {

namespace {

constexpr double kLeft = 80, kTop = 40, kRow = 30, kCellHeight = 24;

/// Fill colours per kind of cell: [direction 0, direction 1].
struct Palette {
  const char *fill[2];
};
constexpr Palette kForward{{"#f6a04d", "#fcd9b4"}};
constexpr Palette kBackward{{"#4f8fd6", "#bcd6f2"}};
constexpr Palette kBackwardInput{{"#5fb35f", "#c6e6c2"}};
constexpr Palette kWeight{{"#9b7fd1", "#ddd2f0"}};

const Palette &paletteOf(Op op) {
  switch (op) {
  case Op::Forward:
    return kForward;
  case Op::BackwardInput:
    return kBackwardInput;
  case Op::BackwardWeight:
    return kWeight;
  default:
    return kBackward;
  }
}

std::string num(double value) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.2f", value);
  return text;
}

std::string escape(const std::string &text) {
  std::string out;
  for (char c : text) {
    if (c == '&')
      out += "&amp;";
    else if (c == '<')
      out += "&lt;";
    else if (c == '>')
      out += "&gt;";
    else
      out += c;
  }
  return out;
}

class Canvas {
public:
  void rect(double x, double y, double w, double h, const char *fill,
            const char *stroke, double strokeWidth) {
    body += "<rect x=\"" + num(x) + "\" y=\"" + num(y) + "\" width=\"" +
            num(w) + "\" height=\"" + num(h) + "\" fill=\"" + fill +
            "\" stroke=\"" + stroke + "\" stroke-width=\"" + num(strokeWidth) +
            "\"/>\n";
  }
  void text(double x, double y, double size, const std::string &content,
            const char *anchor = "middle") {
    body += "<text x=\"" + num(x) + "\" y=\"" + num(y) + "\" font-size=\"" +
            num(size) + "\" text-anchor=\"" + anchor + "\">" + escape(content) +
            "</text>\n";
  }
  void line(double x1, double y1, double x2, double y2) {
    body += "<line x1=\"" + num(x1) + "\" y1=\"" + num(y1) + "\" x2=\"" +
            num(x2) + "\" y2=\"" + num(y2) + "\" stroke=\"#000\"/>\n";
  }
  std::string body;
};

/// A cell with its micro-batch number, when the number fits.
void cell(Canvas &c, double x, double y, double w, const char *fill,
          int label) {
  c.rect(x, y, w, kCellHeight, fill, "#555", 0.5);
  std::string text = std::to_string(label);
  double size = std::min(12.0, w / (0.62 * double(text.size()) + 0.2));
  if (size >= 5)
    c.text(x + w / 2, y + kCellHeight / 2 + size * 0.35, size, text);
}

/// 1, 2 or 5 times a power of ten, giving about ten ticks over `span`.
double tickStep(double span) {
  double raw = std::max(span, 1e-9) / 10;
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0})
    if (m * power >= raw)
      return m * power;
  return 10 * power;
}

} // namespace

std::string timelineSvg(const PipelineSchedule &s, const SimulationResult &r,
                        const ChunkCosts &costs, const std::string &title) {
  double pair = costs.forward + costs.backward;
  double forwardShare = pair > 0 ? costs.forward / pair : 0.5;
  double span = std::max(r.makespan, 1e-9);
  double scale = std::clamp(1600.0 / span, 1.0, 48.0);
  double width = kLeft + span * scale + 20;
  double axisY = kTop + s.ranks * kRow + 6;
  double legendY = axisY + 40;
  Canvas c;
  c.text(kLeft, 22, 14, title, "start");
  for (int rank = 0; rank < s.ranks; ++rank) {
    double y = kTop + rank * kRow;
    c.text(kLeft - 8, y + kCellHeight / 2 + 4, 12,
           "Device " + std::to_string(rank), "end");
    for (size_t i = 0; i < s.streams[rank].size(); ++i) {
      const Instruction &in = s.streams[rank][i];
      if (!isCompute(in.op))
        continue;
      double x = kLeft + r.times[rank][i].start * scale;
      double w = (r.times[rank][i].end - r.times[rank][i].start) * scale;
      int direction = s.direction[in.chunk.microBatch];
      if (in.op != Op::ForwardBackward) {
        cell(c, x, y, w, paletteOf(in.op).fill[direction],
             s.indexInDirection(in.chunk.microBatch));
        continue;
      }
      // The pair: its forward and backward cells in proportion F : B, one
      // border around both.
      int back = s.direction[in.backward.microBatch];
      double f = w * forwardShare;
      cell(c, x, y, f, kForward.fill[direction],
           s.indexInDirection(in.chunk.microBatch));
      cell(c, x + f, y, w - f, kBackward.fill[back],
           s.indexInDirection(in.backward.microBatch));
      c.rect(x, y, w, kCellHeight, "none", "#000", 2);
    }
  }
  // Time axis.
  c.line(kLeft, axisY, kLeft + span * scale, axisY);
  double step = tickStep(span);
  for (int k = 0; k * step <= span + 1e-9; ++k) {
    double t = k * step;
    c.line(kLeft + t * scale, axisY, kLeft + t * scale, axisY + 5);
    char label[32];
    std::snprintf(label, sizeof(label), "%g", t);
    c.text(kLeft + t * scale, axisY + 18, 11, label);
  }
  c.text(kLeft - 8, axisY + 18, 11, "time", "end");
  // Legend.
  struct Entry {
    const char *name;
    const char *fill;
  };
  bool dual = s.holder.size() > 1;
  std::vector<Entry> legend = {{"Forward", kForward.fill[0]},
                               {"Backward", kBackward.fill[0]},
                               {"Backward for input", kBackwardInput.fill[0]},
                               {"Backward for weights", kWeight.fill[0]}};
  if (dual)
    legend.push_back({"Reverse direction (lighter)", kForward.fill[1]});
  double x = kLeft;
  for (const Entry &e : legend) {
    c.rect(x, legendY, 18, 14, e.fill, "#555", 0.5);
    c.text(x + 24, legendY + 11, 12, e.name, "start");
    x += 24 + 7.2 * double(std::string(e.name).size()) + 24;
  }
  c.rect(x, legendY, 18, 14, "none", "#000", 2);
  c.text(x + 24, legendY + 11, 12, "Overlapped forward & backward (F&B)",
         "start");
  x += 24 + 7.2 * 36;
  width = std::max(width, x + 20);
  double height = legendY + 30;
  return "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) +
         "\" height=\"" + num(height) + "\" viewBox=\"0 0 " + num(width) + " " +
         num(height) +
         "\" font-family=\"Helvetica, Arial, sans-serif\">\n"
         "<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n" +
         c.body + "</svg>\n";
}

} // namespace dsflow::schedule
