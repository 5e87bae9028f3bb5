using System;
using System.Collections;
using System.Collections.Generic;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Management.Automation;

namespace PsIpc
{
    /// <summary>
    /// Tells whether CliXml at a given -Depth cuts a value (PSSerializer writes an object past the depth as
    /// its ToString() text). PSSerializer's depth rules vary by type (records and dictionaries do not spend
    /// depth, some ETS properties keep theirs), so instead of modelling them the probe round-trips the first
    /// object of each type and compares: what had properties and arrives without them was cut.
    /// Send-IpcMessage warns once per type, so a user learns about -Depth before the results arrive flat.
    /// </summary>
    internal sealed class DepthProbe
    {
        private const int MaxItems = 64;
        private const int MaxLevels = 12;
        private readonly HashSet<string> _probedTypes = new HashSet<string>(StringComparer.Ordinal);

        /// <summary>The path of the first property that arrives cut, or null. Each type is probed once.</summary>
        public string? FindCut(object? value, int depth)
        {
            if (!(value is PSObject pso) || pso.TypeNames.Count == 0) return null;
            if (!_probedTypes.Add(pso.TypeNames[0])) return null;
            object copy = PSSerializer.Deserialize(PSSerializer.Serialize(value, depth));
            return Compare(value, copy, string.Empty, 0);
        }

        private static string? Compare(object? original, object? copy, string path, int level)
        {
            object? o = original is PSObject po ? po.BaseObject : original;
            if (IsScalar(o) || level > MaxLevels) return null;
            object? c = copy is PSObject pc ? pc.BaseObject : copy;
            if (c is string) return path.Length == 0 ? "(the object itself)" : path;

            if (o is IDictionary dictionary && c is IDictionary copied)
            {
                int n = 0;
                foreach (DictionaryEntry entry in dictionary)
                {
                    if (++n > MaxItems || !copied.Contains(entry.Key)) break;
                    string? cut = Compare(entry.Value, copied[entry.Key], Join(path, Convert.ToString(entry.Key, CultureInfo.CurrentCulture)), level + 1);
                    if (cut != null) return cut;
                }
                return null;
            }
            if (o is IEnumerable items && !(o is PSCustomObject) && c is IEnumerable copiedItems)
            {
                IEnumerator left = items.GetEnumerator();
                IEnumerator right = copiedItems.GetEnumerator();
                for (int i = 0; i < MaxItems && left.MoveNext() && right.MoveNext(); i++)
                {
                    string? cut = Compare(left.Current, right.Current, path + "[" + i + "]", level + 1);
                    if (cut != null) return cut;
                }
                return null;
            }

            PSObject originalObject = PSObject.AsPSObject(original);
            PSObject copiedObject = PSObject.AsPSObject(copy);
            int seen = 0;
            foreach (PSPropertyInfo property in copiedObject.Properties)
            {
                if (++seen > MaxItems) break;
                PSPropertyInfo source = originalObject.Properties[property.Name];
                if (source == null) continue;
                object? sourceValue;
                try
                {
                    sourceValue = source.Value;
                }
                catch (Exception)
                {
                    continue; // a getter that throws: the serializer skipped it too
                }
                string? cut = Compare(sourceValue, property.Value, Join(path, property.Name), level + 1);
                if (cut != null) return cut;
            }
            return null;
        }

        private static bool IsScalar([NotNullWhen(false)] object? value) =>
            value == null || value is string || value is byte[] || value is char || value is bool ||
            value is DateTime || value is DateTimeOffset || value is TimeSpan || value is decimal || value is Guid ||
            value is Uri || value is Version || value is Enum || value is System.Security.SecureString ||
            value is System.Xml.XmlDocument || value.GetType().IsPrimitive;

        private static string Join(string path, string name) => path.Length == 0 ? name : path + "." + name;
    }
}
