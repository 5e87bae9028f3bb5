using System;
using System.Collections.Generic;
using System.Globalization;
using System.IO;
using System.Linq;
using ScottPlot;
using SkiaSharp;

namespace PsIpc.Soak
{
    /// <summary>
    /// Draws the soak's samples (samples.csv of soak/Invoke-Soak.ps1: Seconds, Label, Pid, RssMiB, Fds, IpcFds, Threads)
    /// as three stacked charts, one line per process: working set, descriptors (without the runtime's assemblies)
    /// and threads, with the end of the warm-up marked.
    /// Usage: SoakPlot samples.csv soak.png warmupSeconds "title"
    /// </summary>
    internal static class Program
    {
        private const int Width = 1400;
        private const int PanelHeight = 420;

        private static int Main(string[] args)
        {
            if (args.Length < 3)
            {
                Console.Error.WriteLine("usage: SoakPlot <samples.csv> <out.png> <warmupSeconds> [title]");
                return 2;
            }
            List<Sample> samples = Read(args[0]);
            if (samples.Count == 0)
            {
                Console.Error.WriteLine($"No samples in {args[0]}.");
                return 1;
            }
            double warmup = double.Parse(args[2], CultureInfo.InvariantCulture);
            string title = args.Length > 3 ? args[3] : "PsIpc soak";
            bool minutes = samples.Max(s => s.Seconds) > 600;
            var panels = new (string Label, Func<Sample, double> Value)[]
            {
                ("working set (MiB)", s => s.RssMiB),
                ("descriptors (no assemblies)", s => s.IpcFds),
                ("threads", s => s.Threads),
            };
            using var surface = SKSurface.Create(new SKImageInfo(Width, PanelHeight * panels.Length));
            surface.Canvas.Clear(SKColors.White);
            for (int i = 0; i < panels.Length; i++)
            {
                Plot plot = Draw(samples, panels[i].Label, panels[i].Value, warmup, minutes, i == 0 ? title : null);
                using SKBitmap bitmap = SKBitmap.Decode(plot.GetImageBytes(Width, PanelHeight, ImageFormat.Png));
                surface.Canvas.DrawBitmap(bitmap, 0, i * PanelHeight);
            }
            using SKImage image = surface.Snapshot();
            using SKData png = image.Encode(SKEncodedImageFormat.Png, 100);
            using (FileStream file = File.Create(args[1])) png.SaveTo(file);
            Console.WriteLine($"{args[1]}: {samples.Count} samples of {samples.Select(s => s.Label).Distinct().Count()} processes");
            return 0;
        }

        private static Plot Draw(List<Sample> samples, string label, Func<Sample, double> value, double warmup, bool minutes, string? title)
        {
            var plot = new Plot();
            plot.Add.Palette = new ScottPlot.Palettes.Category20(); // up to 20 processes, each its own colour
            double scale = minutes ? 60 : 1;
            foreach (IGrouping<string, Sample> process in samples.GroupBy(s => s.Label))
            {
                double[] xs = process.Select(s => s.Seconds / scale).ToArray();
                double[] ys = process.Select(value).ToArray();
                var line = plot.Add.ScatterLine(xs, ys);
                line.LegendText = process.Key;
                line.LineWidth = 1.5f;
            }
            var marker = plot.Add.VerticalLine(warmup / scale);
            marker.LinePattern = LinePattern.Dashed;
            marker.Color = Colors.Gray;
            marker.LegendText = "end of warm-up";
            plot.YLabel(label);
            plot.XLabel(minutes ? "minutes" : "seconds");
            if (title != null)
            {
                plot.Title(title);
                plot.ShowLegend(Alignment.LowerLeft); // once, on the first chart: the colours are the same below
                plot.Legend.FontSize = 10;
            }
            else
            {
                plot.HideLegend(); // a plottable with a LegendText shows one by default
            }
            plot.Axes.AutoScale();
            return plot;
        }

        private static List<Sample> Read(string path)
        {
            string[] lines = File.ReadAllLines(path);
            if (lines.Length == 0) return new List<Sample>();
            string[] header = Split(lines[0]);
            int Column(string name) => Array.FindIndex(header, h => string.Equals(h, name, StringComparison.OrdinalIgnoreCase));
            int seconds = Column("Seconds"), label = Column("Label"), rss = Column("RssMiB"), ipcFds = Column("IpcFds"), threads = Column("Threads");
            var samples = new List<Sample>();
            foreach (string line in lines.Skip(1))
            {
                if (line.Length == 0) continue;
                string[] f = Split(line);
                samples.Add(new Sample(
                    double.Parse(f[seconds], CultureInfo.InvariantCulture), f[label],
                    double.Parse(f[rss], CultureInfo.InvariantCulture), double.Parse(f[ipcFds], CultureInfo.InvariantCulture),
                    double.Parse(f[threads], CultureInfo.InvariantCulture)));
            }
            return samples;
        }

        // Export-Csv quotes only what needs it; labels hold no quote or comma.
        private static string[] Split(string line) => line.Split(',').Select(f => f.Trim('"')).ToArray();

        private sealed record Sample(double Seconds, string Label, double RssMiB, double IpcFds, double Threads);
    }
}
